"""Reads of runbooks: what a user may see (``Right.READ`` in the runbook's tenant)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from execution import policy
from execution.errors import NotFound
from execution.runbooks.models import Runbook


def runbooks_visible_to(user: Any, *, door: str = "") -> QuerySet[Runbook]:
    tenant_ids = policy.tenant_ids_where(user, policy.Right.READ, door=door)
    return Runbook.objects.filter(tenant_id__in=tenant_ids).select_related("tenant", "owner")


def runbook_find(user: Any, *, slug: str, tenant: str | None, door: str = "") -> Runbook:
    """``user``'s runbook ``slug`` (in ``tenant``, needed only when several tenants of the
    user have that slug). NotFound when the user reads no such runbook: another tenant's
    runbook is unknown to them."""
    found = list(runbooks_visible_to(user, door=door).filter(slug=slug)[:10])
    if tenant:
        found = [r for r in found if r.tenant.slug == tenant]
    if not found:
        raise NotFound(f"no such runbook {slug!r}")
    if len(found) > 1:
        raise NotFound(f"several of your tenants have a runbook {slug!r}: name the tenant")
    return found[0]
