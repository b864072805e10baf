"""The content of one notification: e-mail subject/text/HTML or a webhook's JSON, masked.

Every value taken from the execution or the event goes through ``execution.masking`` before
it is rendered, so what is stored in the delivery row is exactly what is sent.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse

from approvals.links import approval_link
from approvals.selectors import open_approval
from execution.masking import mask_data, mask_text
from execution.models import Execution, ExecutionEvent
from monitoring.notifications.models import Kind
from opsconductor.listening import public_url

HEADLINES = {
    Kind.APPROVAL_REQUESTED: "approval requested",
    Kind.APPROVED: "approved",
    Kind.REJECTED: "rejected",
    Kind.FAILED: "failed",
    Kind.TIMEOUT: "timed out",
    Kind.DEAD_LETTERED: "dead-lettered",
    Kind.SLA_VIOLATION: "SLA violation",
    Kind.ROLE_GRANTED: "role granted",
}


# A subject stays well inside one folded header line; a plan name (up to 200 characters,
# user-written) gets at most PLAN_NAME_IN_SUBJECT of it.
SUBJECT_MAX = 200
PLAN_NAME_IN_SUBJECT = 120
# Whitespace of any kind (line breaks included) becomes one space; invisible characters
# (controls, format characters such as bidi overrides, surrogates, private use, unassigned)
# are dropped: a header carries printable text only.
_AS_SPACE = {"Cc", "Zl", "Zp", "Zs"}
_DROPPED = {"Cf", "Cs", "Co", "Cn"}


def header_line(value: object, limit: int) -> str:
    """``value`` as one line of printable text of at most ``limit`` characters.

    Anything user-written that reaches a mail header goes through here: a CR/LF would make
    Django refuse the whole message (BadHeaderError), and a header split by a line break is
    a header injection. Longer text is cut with an ellipsis.
    """
    kept = []
    for char in str(value):
        category = unicodedata.category(char)
        if category in _AS_SPACE:
            kept.append(" ")
        elif category not in _DROPPED:
            kept.append(char)
    line = " ".join("".join(kept).split())
    return line if len(line) <= limit else line[: max(limit - 1, 0)].rstrip() + "\u2026"


@dataclass(frozen=True)
class Content:
    subject: str
    body: str  # text/plain for e-mail, the JSON document for webhooks
    html_body: str = ""


def _facts(
    *, event: ExecutionEvent, execution: Execution, kind: str, approvers: list[str], recipient: Any = None
) -> dict[str, Any]:
    plan = execution.plan_snapshot if isinstance(execution.plan_snapshot, dict) else {}
    # The approval to vote on (a waiting gate's, else the pre-run one), linked by a signed,
    # single-use, expiring link (approvals/links.py) that opens its page behind login; a
    # message to one ``recipient`` carries a link only they open.
    approval = open_approval(execution) if kind == Kind.APPROVAL_REQUESTED else None
    execution_url = public_url() + reverse("execution_page", args=[execution.execution_id])
    url = approval_link(approval, user=recipient) if approval else execution_url
    details = event.details if isinstance(event.details, dict) else {}
    reason = details.get("reason") or details.get("message") or event.error_message or execution.error_message
    facts: dict[str, Any] = {
        "kind": kind,
        "headline": HEADLINES.get(Kind(kind), kind),
        "tenant": execution.tenant.slug,
        "environment": execution.environment,
        "plan_name": str(plan.get("name") or execution.execution_id),
        "action_class": execution.action_class,
        "status": execution.status,
        "requester": execution.actor.get_username(),
        "execution_id": str(execution.execution_id),
        "event_id": event.pk,
        "occurred_at": event.created_at.isoformat(),
        "url": url,
        "execution_url": execution_url,
        "reason": str(reason or ""),
        "details": details,
        "steps": [str(step.get("name", "")) for step in plan.get("steps") or [] if isinstance(step, dict)],
    }
    if approval is not None:
        facts["approval"] = {"level": approval.approval_level, "expires_at": approval.expires_at.isoformat()}
        facts["approvers"] = approvers
    return dict(mask_data(facts))


def _text_line(facts: dict[str, Any]) -> str:
    """Slack's ``text``: one line with the link in Slack's <url|label> form."""
    line = (
        f"[{facts['tenant']}/{facts['environment']}] {facts['headline']}: {facts['plan_name']}"
        f" (requested by {facts['requester']})"
    )
    if facts["reason"]:
        line += f" - {mask_text(facts['reason'])[:300]}"
    return f"{line} <{facts['url']}|open>"


def content_email(
    *, event: ExecutionEvent, execution: Execution, kind: str, approvers: list[str], recipient: Any = None
) -> Content:
    """The e-mail; ``recipient`` (a user) when it goes to that one person (an approval request)."""
    facts = _facts(event=event, execution=execution, kind=kind, approvers=approvers, recipient=recipient)
    plan_name = header_line(facts["plan_name"], PLAN_NAME_IN_SUBJECT)
    subject = f"[OpsConductor] {facts['tenant']}/{facts['environment']}: {facts['headline']}: {plan_name}"
    text = render_to_string("notifications/email/message.txt", facts)
    html = render_to_string("notifications/email/message.html", facts)
    # A second pass over the rendered result: masking is idempotent and cheap.
    return Content(
        subject=header_line(mask_text(subject), SUBJECT_MAX), body=mask_text(text), html_body=mask_text(html)
    )


def content_webhook(
    *, event: ExecutionEvent, execution: Execution, kind: str, approvers: list[str]
) -> Content:
    facts = _facts(event=event, execution=execution, kind=kind, approvers=approvers)
    document = {"text": _text_line(facts), **facts}
    body = json.dumps(mask_data(document), sort_keys=True, separators=(",", ":"), default=str)
    return Content(subject=facts["headline"], body=body)
