from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _bridge_stopped_after_the_test() -> Iterator[None]:
    """A socket test starts this process's LISTEN/NOTIFY bridge; stop it with the test (its
    connection would otherwise outlive the test database)."""
    yield
    from execution.realtime import bridge

    running = bridge._bridge
    if running is not None:
        running.stop()
        bridge._bridge = None
