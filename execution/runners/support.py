"""Helpers shared by the runners: the outbound allow-list, output capping, and
what the engine knows about the step (environment, declared action class)."""

from __future__ import annotations

import fnmatch
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

from execution.runners.base import StepContext


def output_cap() -> int:
    return int(settings.STEP_OUTPUT_CAP_BYTES)


def cap_text(data: bytes | str, cap: int | None = None) -> tuple[str, bool]:
    raw = data.encode() if isinstance(data, str) else data
    cap = output_cap() if cap is None else cap
    return raw[:cap].decode(errors="replace"), len(raw) > cap


def _execution_row(ctx: StepContext) -> dict[str, Any] | None:
    from execution.models import Execution

    try:
        row = (
            Execution.objects.filter(execution_id=ctx.execution_id)
            .values("environment", "plan_snapshot")
            .first()
        )
        return dict(row) if row else None
    except Exception:  # a malformed id in a unit test: no execution
        return None


def step_environment(ctx: StepContext) -> str:
    row = _execution_row(ctx)
    return str(row["environment"]) if row else ""


def step_declared_action_class(ctx: StepContext) -> str | None:
    """The action_class the plan declared for this step, if any."""
    row = _execution_row(ctx)
    steps = ((row or {}).get("plan_snapshot") or {}).get("steps") or []
    if 0 <= ctx.step_index < len(steps) and isinstance(steps[ctx.step_index], dict):
        declared = steps[ctx.step_index].get("action_class")
        return str(declared) if declared else None
    return None


def outbound_host_allowed(*, tenant_slug: str, environment: str, host: str) -> bool:
    """Is ``host`` on the settings allow-list or on the tenant's (environment's) rules?"""
    from execution.models import OutboundAllowRule

    host = host.lower().rstrip(".")
    patterns = [p.lower() for p in settings.HTTP_OUTBOUND_ALLOWLIST]
    rules = OutboundAllowRule.objects.filter(tenant__slug=tenant_slug, environment__in=[environment, ""])
    patterns += [p.lower() for p in rules.values_list("host_pattern", flat=True)]
    return any(fnmatch.fnmatchcase(host, pattern) for pattern in patterns)


def outbound_host_refusal(ctx: StepContext, host: str, *, what: str = "no request was sent") -> str | None:
    """The one allow-list decision for every outbound call of a step (``http`` steps and
    validate's ``http_get`` and ``tcp`` probes): None when ``host`` may be reached, else why."""
    environment = step_environment(ctx)
    if host and outbound_host_allowed(tenant_slug=ctx.tenant_slug, environment=environment, host=host):
        return None
    return (
        f"outbound host {host!r} is not on the allow-list of tenant {ctx.tenant_slug!r}"
        f"{' in ' + environment if environment else ''}; {what} "
        "(add an outbound allow rule in the admin or HTTP_OUTBOUND_ALLOWLIST)"
    )


def outbound_refusal(ctx: StepContext, url: str) -> str | None:
    """None when ``url`` may be called by this step, else the reason (nothing is sent).

    The host checked is the one requests connects to: its URL as requests prepares it. Read
    from the raw text, ``http://127.0.0.1\\@allowed.example.com/`` names the allowed host,
    while requests sends ``http://127.0.0.1/%5C@allowed.example.com/`` to 127.0.0.1.
    """
    try:
        parts = urlsplit(requests.Request("GET", url).prepare().url or "")
    except (requests.RequestException, ValueError):
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"url {url!r} is not an absolute http(s) URL"
    return outbound_host_refusal(ctx, parts.hostname)
