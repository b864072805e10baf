"""The operator pages' door to the policy: ``require`` a right, answer 404 or 403.

A user of another tenant gets a 404 (the object is unknown to them), a member without the
right a 403 with the reason; ``require`` has recorded the refusal either way.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from execution import policy


def page_require(request: HttpRequest, right: policy.Right, *, what: str, **context: Any) -> None:
    try:
        policy.require(request.user, right, door="page", **context)
    except policy.RightDenied as denied:
        if denied.hidden:
            raise Http404(f"No such {what}") from None
        raise PermissionDenied(denied.reason) from None


def page_allows(request: HttpRequest, right: policy.Right, **context: Any) -> bool:
    """Whether to show the button for ``right`` (the post is enforced by page_require)."""
    return policy.decide(request.user, right, **context).allowed
