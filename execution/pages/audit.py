"""``/audit/``: who did what in the user's tenants (docs/contract.md#operator-console), filterable, paginated.

Three sources, read as one stream: the execution events that record a person's (or the
policy's) decision -- submissions, votes, cancels, requeues, denials --, the audit log rows
written where no execution exists (a refused submission, membership and token changes), and
the secret-access audit (every resolution: who, execution, step, path; never a value).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import CharField, F, Q, QuerySet, UUIDField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import JSONObject
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from execution.enums import ActorType
from execution.models import AuditLog, ExecutionEvent, SecretAccess, Tenant
from execution.selectors import tenant_ids_of

PAGE_SIZE = 50
SECRET_ACCESS = "secret_resolved"  # noqa: S105 - the audit's name for a secret_access_audit row
# kind -> (event types, event type prefix) of execution events and audit-log rows.
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "submission": (("created",), ""),
    "vote": (("approval_vote", "approval_expired"), ""),
    "cancel": (("cancel_requested", "cancelled"), ""),
    "requeue": (("requeued", "dlq_archived"), ""),
    "denial": (("rbac_violation", "rbac_warning"), ""),
    "secret": ((), "secret_"),
    "alert": (("sla_violation", "sla_alert_acknowledged"), ""),
    "membership": (
        ("member_added", "member_role_changed", "member_removed", "token_rotated", "token_revoked"),
        "",
    ),
    # A superuser's reads in the admin of a tenant's secrets and delivery bodies.
    "admin_read": ((), "admin_read_"),
}


class AuditFilterInvalid(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def _kind_q(kind: str) -> Q:
    types, prefix = KINDS[kind]
    q = Q(event_type__in=types) if types else Q(pk__in=[])
    return q | Q(event_type__startswith=prefix) if prefix else q


def kind_of(event_type: str) -> str:
    for kind, (types, prefix) in KINDS.items():
        if event_type in types or (prefix and event_type.startswith(prefix)):
            return kind
    return "other"


def _parse_date(params: Any, name: str) -> dt.datetime | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise AuditFilterInvalid(name, "expected a date YYYY-MM-DD") from None
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def audit_filter_parse(params: Any) -> dict[str, Any]:
    kind = params.get("kind", "").strip()
    if kind and kind not in KINDS:
        raise AuditFilterInvalid("kind", f"one of {', '.join(KINDS)}")
    actor = params.get("actor", "").strip()
    if len(actor) > 150 or "\x00" in actor:
        raise AuditFilterInvalid("actor", "at most 150 characters, no NUL")
    tenant = params.get("tenant", "").strip()[:64]
    to = _parse_date(params, "to")
    return {
        "kind": kind,
        "actor": actor,
        "tenant": tenant,
        "from": _parse_date(params, "from"),
        "to": to + dt.timedelta(days=1) if to else None,
        "raw": {k: params.get(k, "") for k in ("kind", "actor", "tenant", "from", "to") if params.get(k)},
    }


def audit_stream(*, tenant_ids: list[int], flt: dict[str, Any]) -> QuerySet[Any]:
    """Audit entries of ``tenant_ids`` matching ``flt``, newest first, as one UNION query."""
    kinds = [flt["kind"]] if flt["kind"] else list(KINDS)
    wanted = Q(pk__in=[])
    for kind in kinds:
        wanted |= _kind_q(kind)
    # The engine's own "cancelled" transition follows a person's cancel_requested: keep only
    # the cancels a person (or the system on their behalf) did, not the worker's echo.
    events = ExecutionEvent.objects.filter(wanted, tenant_id__in=tenant_ids).exclude(
        event_type="cancelled", actor_type=ActorType.WORKER
    )
    logs = AuditLog.objects.filter(wanted, tenant_id__in=tenant_ids)
    if flt["actor"]:
        events = events.filter(actor__username=flt["actor"])
        logs = logs.filter(actor__username=flt["actor"])
    if flt["from"]:
        events, logs = events.filter(created_at__gte=flt["from"]), logs.filter(created_at__gte=flt["from"])
    if flt["to"]:
        events, logs = events.filter(created_at__lt=flt["to"]), logs.filter(created_at__lt=flt["to"])
    if flt["tenant"]:
        events = events.filter(tenant_id__in=Tenant.objects.filter(slug=flt["tenant"]).values("pk"))
        logs = logs.filter(tenant__slug=flt["tenant"])
    # The same column names on both sides: UNION ALL reads them positionally, ORDER BY by name.
    event_rows = events.values(
        source=Value("event", output_field=CharField()),
        row_id=F("pk"),
        at=F("created_at"),
        type=F("event_type"),
        actor_name=F("actor__username"),
        execution_ref=F("execution_id"),
        plan=KeyTextTransform("name", "execution__plan_snapshot"),
        info=F("details"),
        text=F("error_message"),
    )
    log_rows = logs.values(
        source=Value("log", output_field=CharField()),
        row_id=F("pk"),
        at=F("created_at"),
        type=F("event_type"),
        actor_name=F("actor__username"),
        execution_ref=Value(None, output_field=UUIDField()),
        plan=Value("", output_field=CharField()),
        info=F("details"),
        text=F("reason"),
    )
    sources = [log_rows]
    if "secret" in kinds:
        sources.append(_secret_accesses(tenant_ids=tenant_ids, flt=flt))
    return event_rows.union(*sources, all=True).order_by("-at", "-row_id")


def _secret_accesses(*, tenant_ids: list[int], flt: dict[str, Any]) -> QuerySet[Any]:
    """Every resolution of a secret (who, which execution and step, which path; never a value)."""
    rows = SecretAccess.objects.filter(tenant_id__in=tenant_ids)
    if flt["actor"]:
        rows = rows.filter(actor__username=flt["actor"])
    if flt["from"]:
        rows = rows.filter(created_at__gte=flt["from"])
    if flt["to"]:
        rows = rows.filter(created_at__lt=flt["to"])
    if flt["tenant"]:
        rows = rows.filter(tenant__slug=flt["tenant"])
    return rows.values(
        source=Value("secret", output_field=CharField()),
        row_id=F("pk"),
        at=F("created_at"),
        type=Value(SECRET_ACCESS, output_field=CharField()),
        actor_name=F("actor__username"),
        execution_ref=F("execution_id"),
        plan=Value("", output_field=CharField()),
        info=JSONObject(path=F("path"), step_index=F("step_index"), usage=F("usage")),
        text=Value("", output_field=CharField()),
    )


def _summary(event_type: str, details: dict[str, Any], text: str) -> str:
    d = details or {}
    if event_type == "approval_vote":
        return f"{d.get('decision', '')}" + (f": {d['comment']}" if d.get("comment") else "")
    if event_type == "created":
        return (
            f"{d.get('environment', '')} · {d.get('action_class', '')} · level {d.get('approval_level', 0)}"
        )
    parts = [str(d[k]) for k in ("reason", "path", "step_index") if d.get(k) not in (None, "")]
    if text and text not in parts:
        parts.append(text)
    return " · ".join(parts)


@login_required
def audit_page(request: HttpRequest) -> HttpResponse:
    tenant_ids = tenant_ids_of(request.user)
    try:
        flt = audit_filter_parse(request.GET)
    except AuditFilterInvalid as bad:
        return render(request, "audit.html", {"error": f"{bad.field}: {bad.reason}"}, status=400)
    paginator = Paginator(audit_stream(tenant_ids=tenant_ids, flt=flt), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page") or 1)
    rows = [
        row | {"kind": kind_of(row["type"]), "summary": _summary(row["type"], row["info"], row["text"])}
        for row in page.object_list
    ]
    base = urlencode(flt["raw"])
    return render(
        request,
        "audit.html",
        {
            "rows": rows,
            "page": page,
            "flt": flt["raw"],
            "kinds": list(KINDS),
            "tenants": Tenant.objects.filter(pk__in=tenant_ids).order_by("slug"),
            "prev_qs": f"{base}&page={page.previous_page_number()}" if page.has_previous() else None,
            "next_qs": f"{base}&page={page.next_page_number()}" if page.has_next() else None,
        },
    )
