"""Connections kept across the steps of one attempt (docs/fleet.md "Connections").

The next step on the same target reuses the connection the step before it opened (docs/fleet.md):
at 100 targets and two steps that is 100 key exchanges and logins instead of 200. A
connection is either *in use* by one step (taken: that step owns it, and closes it on a
failure, a cancel or a timeout as it would a connection of its own) or *idle* here between
steps. The attempt closes every idle one when it ends (``close_all``); a connection given
back after that is closed at once, so none outlives its attempt.

A runner keys its connections by everything that decides what the connection may do: the
endpoint, the login and a digest of the credential (a step with another credential for the
same host gets a connection of its own).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any

logger = logging.getLogger(__name__)


def credential_digest(credential: dict[str, Any]) -> str:
    """A digest that tells two credentials apart (kept in memory only, in a key)."""
    return hashlib.sha256(json.dumps(credential, sort_keys=True).encode()).hexdigest()


class KeptConnections:
    """The idle connections of one attempt, by key; thread-safe (a fleet step's targets run
    in a pool)."""

    def __init__(self) -> None:
        self._idle: dict[Hashable, tuple[Any, Callable[[], None]]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def take(self, key: Hashable) -> Any | None:
        """The idle connection kept under ``key``, now the caller's; None when there is none."""
        with self._lock:
            entry = self._idle.pop(key, None)
        return entry[0] if entry is not None else None

    def give_back(self, key: Hashable, connection: Any, close: Callable[[], None]) -> None:
        """Keep ``connection`` idle for the attempt's next step on ``key`` (``close`` closes
        it). Closed at once when the attempt has ended or another one is already kept."""
        with self._lock:
            if not self._closed and key not in self._idle:
                self._idle[key] = (connection, close)
                return
        _close_quietly(close)

    def close_all(self) -> None:
        """The attempt's end: every idle connection is closed, later ones on give_back."""
        with self._lock:
            self._closed = True
            idle = list(self._idle.values())
            self._idle.clear()
        for _, close in idle:
            _close_quietly(close)

    def __len__(self) -> int:
        with self._lock:
            return len(self._idle)


def _close_quietly(close: Callable[[], None]) -> None:
    try:
        close()
    except Exception:  # closing a connection that is already gone
        logger.warning("closing a kept connection failed", exc_info=True)
