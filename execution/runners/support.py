"""Helpers shared by the runners: the outbound guard in the step's tenant and environment,
output capping, and what the engine knows about the step (environment, declared class)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from execution.outbound import Checked, check_host, check_url
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
    if ctx.environment is not None:
        return ctx.environment
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


def step_check_url(ctx: StepContext, url: str) -> Checked:
    """The outbound guard's check of a URL a step sends to, in the step's tenant and
    environment (raises OutboundRefused / OutboundUnresolved: nothing was sent)."""
    return check_url(url, tenant=ctx.tenant_slug, environment=step_environment(ctx))


def step_check_host(ctx: StepContext, host: str, port: int, *, scheme: str, listed: bool) -> Checked:
    """The guard's check of a host and port a step connects to; ``listed`` for the step's
    own target asset (the tenant's inventory lists it)."""
    return check_host(
        host,
        port,
        tenant=ctx.tenant_slug,
        environment=step_environment(ctx),
        scheme=scheme,
        listed=listed,
        rules=ctx.outbound_rules,
    )
