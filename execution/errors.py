"""Domain errors raised by services; adapters translate them (HTTP status, exit code)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose."""


class IllegalTransition(DomainError):
    def __init__(self, execution_id: object, from_status: str, to_status: str) -> None:
        super().__init__(f"illegal transition {from_status} -> {to_status} for execution {execution_id}")
        self.execution_id = execution_id
        self.from_status = from_status
        self.to_status = to_status


class NotFound(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class Conflict(DomainError):
    pass


class AlreadyFinished(Conflict):
    """A request that needs an unfinished execution (cancel) met a finished one."""

    def __init__(self, execution_id: object, status: str) -> None:
        super().__init__(f"execution {execution_id} already finished: {status}")
        self.status = status


class KeyReused(Conflict):
    """An idempotency key held (within the window) by an execution of another plan (422)."""

    def __init__(self, execution_id: object) -> None:
        super().__init__(f"this idempotency key is held by execution {execution_id}, which has another plan")
        self.execution_id = execution_id
