"""The approval services (docs/contract.md#approvals): request, vote, expire. Adapters import from here."""

from approvals.services.expire import approvals_expire
from approvals.services.request import approval_request
from approvals.services.vote import approval_vote, approval_vote_forbidden

__all__ = ["approval_request", "approval_vote", "approval_vote_forbidden", "approvals_expire"]
