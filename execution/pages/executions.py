"""``/executions/``: search, filters, pages, live (docs/contract.md#live-progress,
docs/contract.md#operator-console); ``/executions/rows/`` for live rows.

The list is rendered from one filtered, paginated query. The browser then follows each
tenant's socket; an execution it has no row for is fetched from ``/executions/rows/`` with
the page's own filter, so a live row is complete (environment, requester, ...) and only
appears when it matches.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from execution.enums import Environment, ExecutionStatus
from execution.models import Tenant
from execution.pages.listing import (
    PAGE_SIZE,
    FilterInvalid,
    executions_for_console,
    filter_parse,
    row_progress,
    with_step_counts,
)
from execution.realtime.reader import stream_head
from execution.selectors import tenant_ids_of

ROWS_LIMIT = 20


def live_tenants(tenant_ids: list[int]) -> list[dict[str, Any]]:
    """Each tenant's slug and newest event id: where the page's sockets start.

    Read before the rows: whatever changes in between is replayed by the socket.
    """
    return [
        {"slug": t.slug, "after": stream_head(tenant_id=t.pk)}
        for t in Tenant.objects.filter(pk__in=tenant_ids).order_by("slug")
    ]


def decorate(executions: list[Any]) -> list[Any]:
    for execution in executions:
        execution.row_progress = row_progress(execution)
    return executions


@login_required
def executions_list_page(request: HttpRequest) -> HttpResponse:
    tenant_ids = tenant_ids_of(request.user)
    try:
        flt = filter_parse(request.GET)
    except FilterInvalid as bad:
        return render(
            request,
            "executions/list.html",
            {"error": f"{bad.field}: {bad.reason}", "tenants": [], "executions": [], "flt": None},
            status=400,
        )
    tenants = live_tenants(tenant_ids) if flt.page == 1 else []
    paginator = Paginator(with_step_counts(executions_for_console(tenant_ids=tenant_ids, flt=flt)), PAGE_SIZE)
    page = paginator.get_page(flt.page)
    requesters = (
        get_user_model()
        .objects.filter(memberships__tenant_id__in=tenant_ids)
        .distinct()
        .order_by("username")
        .values_list("username", flat=True)
    )
    context = {
        "flt": flt,
        "tenants": tenants,
        "page": page,
        "executions": decorate(list(page.object_list)),
        "statuses": ExecutionStatus.values,
        "environments": Environment.values,
        "requesters": list(requesters[:500]),
        "prev_qs": flt.query_string(page=page.previous_page_number()) if page.has_previous() else None,
        "next_qs": flt.query_string(page=page.next_page_number()) if page.has_next() else None,
        "filter_qs": flt.query_string(page=1),
    }
    return render(request, "executions/list.html", context)


@login_required
def executions_rows_fragment(request: HttpRequest) -> HttpResponse:
    """``<tr>`` rows of the given ``ids`` that match the filter in the query string (live rows)."""
    tenant_ids = tenant_ids_of(request.user)
    try:
        flt = filter_parse(request.GET)
        ids = [uuid.UUID(raw) for raw in request.GET.get("ids", "").split(",") if raw][:ROWS_LIMIT]
    except (FilterInvalid, ValueError):
        return HttpResponse("bad filter", status=400, content_type="text/plain")
    rows = executions_for_console(tenant_ids=tenant_ids, flt=flt).filter(execution_id__in=ids)
    return render(request, "executions/_rows.html", {"executions": decorate(list(with_step_counts(rows)))})
