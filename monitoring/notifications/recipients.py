"""Who gets an ``approval_requested`` e-mail: exactly the users who may vote on it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from approvals.selectors import open_approval
from approvals.services.vote import approval_vote_forbidden
from execution.models import Execution


def approval_voters(*, execution: Execution) -> list[Any]:
    """Active members of the execution's tenant whom the vote rule lets vote, with an e-mail
    address that is one valid address (Django's validator). An account's e-mail is not always
    validated where it came from (an identity provider's claim): ``a@b@c`` would fail the
    whole message for every approver, ``ada@corp.example,thief@evil.example`` would add a
    recipient to the comma-separated destination. Such a voter gets no mail.

    The rule itself is the one the vote service applies (approval_vote_forbidden): no second
    copy of "who may vote" here.
    """
    approval = open_approval(execution)  # a waiting gate's, else the pre-run one
    if approval is None:
        return []
    members = (
        get_user_model()
        .objects.filter(memberships__tenant_id=execution.tenant_id, is_active=True)
        .exclude(email="")
        .order_by("username")
        .distinct()
    )
    return [
        user
        for user in members
        if _valid_address(user.email) and approval_vote_forbidden(approval=approval, voter=user) is None
    ]


def _valid_address(address: str) -> bool:
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True
