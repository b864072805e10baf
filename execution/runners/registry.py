"""The table of step types. Adding a step type: one new module and one line here."""

from __future__ import annotations

import threading

from execution.runners.base import Runner

_RUNNER_CLASSES: list[type[Runner]] = []


def register(cls: type[Runner]) -> type[Runner]:
    _RUNNER_CLASSES.append(cls)
    return cls


def _load() -> None:
    # One import per step type module; each module decorates its class with @register.
    from execution.runners import (  # noqa: F401
        approval,
        command,
        file,
        http,
        noop,
        sleep,
        sql,
        validate,
        workflow,
    )


_table: dict[str, Runner] | None = None
_table_lock = threading.Lock()


def runners_by_name() -> dict[str, Runner]:
    """Every accepted step type name (canonical and alias) -> a runner instance (shared: do
    not modify). Built once per process, under a lock: web requests run in threads, and a
    thread must never see a half-loaded table."""
    global _table
    if _table is None:
        with _table_lock:
            if _table is None:
                _load()
                table: dict[str, Runner] = {}
                for cls in _RUNNER_CLASSES:
                    instance = cls()
                    table[cls.step_type] = instance
                    for alias in cls.aliases:
                        table[alias] = instance
                _table = table
    return _table


def canonical_type(name: str) -> str | None:
    runner = runners_by_name().get(name)
    return runner.step_type if runner else None


def get_runner(name: str) -> Runner:
    runner = runners_by_name().get(name)
    if runner is None:
        raise KeyError(f"unknown step type {name!r}")
    return runner
