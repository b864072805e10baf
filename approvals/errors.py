"""Why a vote is refused. Adapters map ``VoteForbidden`` to 403 and ``VoteConflict`` to 409."""

from __future__ import annotations

from execution.errors import Conflict, PermissionDenied


class VoteForbidden(PermissionDenied):
    """The voter may not vote on this approval (the requester, or no approver/admin role)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class VoteConflict(Conflict):
    """The approval cannot take this vote (already voted, already decided, expired, plan changed)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class VoteInvalid(ValueError):
    """The vote itself is incomplete (a rejection without a comment): a 400 naming ``field``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


VoteRefused = VoteForbidden | VoteConflict
