"""Where a ``command`` step runs, by the target's connection type.

Each module has ``run_command(ctx) -> StepResult`` and ``describe(ctx) -> dict``; what a
running command holds (a process group, a remote job) is on ``ctx.held``, released by the
runner's cleanup() on a cancel or a timeout. Adding a connection type: one module and one line
here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from execution.enums import ConnectionType

CONNECTIONS: dict[str, str] = {
    ConnectionType.LOCAL: "execution.runners.connections.local",
    ConnectionType.SSH: "execution.runners.connections.ssh",
    ConnectionType.AUTOMATION: "execution.runners.connections.automation",
}


def connection_module(connection_type: str) -> ModuleType:
    path = CONNECTIONS.get(connection_type)
    if path is None:
        raise KeyError(f"command steps cannot run over a {connection_type!r} connection")
    return importlib.import_module(path)
