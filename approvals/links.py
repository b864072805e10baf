"""Signed approval links (docs/notifications.md#approval-links): what a notification links to.

A link carries a token signed with the site's key (``TimestampSigner``, salt ``SALT``): the
approval's id, a fresh nonce and, for a link mailed to one person, that user's id. Opening it
(approvals/views/links.py, behind login) checks the signature, its age against
``APPROVAL_LINK_MAX_AGE_SECONDS``, that a person's link is opened by that person and that its
nonce was never used, then leads to the approval page. The link grants no right: the page's
own policy check decides what the logged-in user sees and may do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from approvals.models import AnyApproval, ApprovalLinkUse
from opsconductor.listening import public_url

SALT = "opsconductor.approvals.link"


class LinkRefused(Exception):
    """The link does not open: ``status`` 400 (not ours or altered) or 410 (expired, used)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class LinkToken:
    approval_id: uuid.UUID
    nonce: str
    user_id: int | None  # the one user it opens for; None: whoever may read the approval


def approval_link(approval: AnyApproval, *, user: Any = None) -> str:
    """The absolute URL of a new single-use link to ``approval``'s page; with ``user``, a link
    only that user opens (an e-mail to one approver), else one for a shared channel."""
    payload: dict[str, Any] = {"a": str(approval.approval_id), "n": uuid.uuid4().hex}
    if user is not None:
        payload["u"] = user.pk
    token = signing.TimestampSigner(salt=SALT).sign_object(payload)
    return public_url() + reverse("approvals:link", args=[token])


def approval_link_read(token: str) -> LinkToken:
    """What a link's token holds; ``LinkRefused`` when it is not ours, was altered or is older
    than ``APPROVAL_LINK_MAX_AGE_SECONDS``. Uses nothing."""
    try:
        payload: Any = signing.TimestampSigner(salt=SALT).unsign_object(
            token, max_age=settings.APPROVAL_LINK_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired:
        raise LinkRefused(410, "this link has expired") from None
    except signing.BadSignature:
        raise LinkRefused(400, "this link is not valid (altered or incomplete)") from None
    try:
        user_id = payload.get("u")
        return LinkToken(
            approval_id=uuid.UUID(payload["a"]),
            nonce=str(payload["n"]),
            user_id=None if user_id is None else int(user_id),
        )
    # Signed by us, so never seen; refused all the same.
    except (TypeError, KeyError, ValueError, AttributeError):
        raise LinkRefused(400, "this link is not valid (altered or incomplete)") from None


def approval_link_use(*, approval_id: uuid.UUID, nonce: str, user: Any) -> None:
    """Spend the link's nonce; ``LinkRefused`` (410) when it was used before, by anyone."""
    try:
        with transaction.atomic():
            ApprovalLinkUse.objects.create(nonce=nonce[:32], approval_id=approval_id, used_by=user)
    except IntegrityError:
        raise LinkRefused(410, "this link has been used already: a link opens once") from None


def approval_links_forget() -> int:
    """Delete the spent nonces older than ``APPROVAL_LINK_MAX_AGE_SECONDS`` (the hourly
    schedule): a link is spent after it was signed, so its signature refuses it by then
    anyway. Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.APPROVAL_LINK_MAX_AGE_SECONDS)
    deleted, _ = ApprovalLinkUse.objects.filter(used_at__lt=cutoff).delete()
    return deleted
