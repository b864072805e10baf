"""The table of step types. Adding a step type: one new module and one line here."""

from __future__ import annotations

from execution.runners.base import Runner

_RUNNER_CLASSES: list[type[Runner]] = []


def register(cls: type[Runner]) -> type[Runner]:
    _RUNNER_CLASSES.append(cls)
    return cls


def _load() -> None:
    # One import per step type module; each module decorates its class with @register.
    # (Modules are added by the issues that build them; a missing module is simply absent.)
    import importlib

    for module in ("noop", "sleep", "command", "http", "sql", "file", "validate", "workflow"):
        try:
            importlib.import_module(f"execution.runners.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"execution.runners.{module}":
                raise


_loaded = False


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        _load()


def runners_by_name() -> dict[str, Runner]:
    """Every accepted step type name (canonical and alias) -> a runner instance."""
    _ensure_loaded()
    table: dict[str, Runner] = {}
    for cls in _RUNNER_CLASSES:
        instance = cls()
        table[cls.step_type] = instance
        for alias in cls.aliases:
            table[alias] = instance
    return table


def canonical_type(name: str) -> str | None:
    runner = runners_by_name().get(name)
    return runner.step_type if runner else None


def get_runner(name: str) -> Runner:
    runner = runners_by_name().get(name)
    if runner is None:
        raise KeyError(f"unknown step type {name!r}")
    return runner
