"""Fixtures for the runner tests: a real sshd on loopback and StepContext builders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from execution.runners.base import ResolvedTarget, StepContext
from tests.support.sshd import LoopbackSshd


@pytest.fixture(scope="session")
def sshd() -> Iterator[LoopbackSshd]:
    server = LoopbackSshd().start()
    try:
        yield server
    finally:
        server.stop()


def ssh_target(server: LoopbackSshd, **metadata: Any) -> ResolvedTarget:
    return ResolvedTarget(
        asset_id="1",
        hostname="ssh-test",
        connection_type="ssh",
        address="127.0.0.1",
        port=server.port,
        username=server.username,
        credential_ref="db:ssh-test#private_key",
        metadata=metadata,
    )


def make_ctx(
    step_type: str,
    params: dict[str, Any],
    *,
    target: ResolvedTarget | None = None,
    timeout: float = 30.0,
    tenant: str = "acme",
    execution_id: str = "00000000-0000-0000-0000-000000000001",
    step_index: int = 0,
    **extra: Any,
) -> StepContext:
    return StepContext(
        execution_id=execution_id,
        tenant_slug=tenant,
        step_index=step_index,
        step_name=f"{step_type} step",
        step_type=step_type,
        params=params,
        target=target,
        timeout_seconds=timeout,
        **extra,
    )
