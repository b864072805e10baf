"""/healthz, /readyz, /metrics and the /monitoring/ dashboard (docs/contract.md#monitoring): thin adapters."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from execution import policy
from monitoring.charts import bar_chart, histogram_chart
from monitoring.metrics import metrics_render
from monitoring.models import SlaAlert
from monitoring.selectors.dashboard import dashboard_data, monitoring_allowed
from monitoring.selectors.figures import EXECUTION_BUCKETS, Histogram
from monitoring.services.alerts import AlertAlreadyAcknowledged, sla_alert_acknowledge
from monitoring.services.readiness import readiness_report


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serves requests; touches nothing else."""
    return JsonResponse({"status": "ok", "time": timezone.now().isoformat()})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to take traffic: 200, or 503 with the failing checks named in ``failing``."""
    report = readiness_report()
    return JsonResponse(report, status=200 if not report["failing"] else 503)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; with MONITORING_METRICS_TOKEN set, ``Authorization: Bearer`` it.
    In production (OPS_DEV=false) the token is required: without one the page is closed
    (403), since its labels name the tenants (check ``monitoring.W001`` says so at start)."""
    token = settings.MONITORING_METRICS_TOKEN
    if not token and not settings.DEV_MODE:
        return HttpResponse(
            "forbidden: set MONITORING_METRICS_TOKEN to scrape /metrics in production\n",
            status=403,
            content_type="text/plain",
        )
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(metrics_render(), content_type=CONTENT_TYPE_LATEST)


def _merged(histograms: dict[str, Histogram]) -> Histogram:
    merged = Histogram(buckets=[(b, 0) for b in EXECUTION_BUCKETS])
    for hist in histograms.values():
        merged.buckets = [(le, n + m) for (le, n), (_, m) in zip(merged.buckets, hist.buckets, strict=True)]
        merged.count += hist.count
        merged.total += hist.total
    return merged


# How often /monitoring/ fetches itself and swaps the dashboard in place (the docs quote it;
# tests/test_docs_truth.py compares).
DASHBOARD_REFRESH_SECONDS = 10


@login_required
@never_cache
def dashboard(request: HttpRequest) -> HttpResponse:
    if not monitoring_allowed(request.user):
        raise PermissionDenied("the dashboard is for staff and tenant members")
    data = dashboard_data(user=request.user)
    durations = _merged(data["histograms"])
    data["status_chart"] = bar_chart(
        [(status, count) for status, count in data["by_status"].items()],
        title="Executions by status (unfinished: now; finished: so far)",
    )
    data["queue_chart"] = bar_chart(
        [(sla, row["pending"]) for sla, row in data["queue"].items()],
        title="Pending queue items by SLA class",
    )
    data["duration_chart"] = histogram_chart(
        durations.buckets,
        durations.count,
        title="Run time of the last attempt (all time)",
        x_label="seconds (bucket upper bound)",
        y_label="executions",
    )
    data["stale_seconds"] = settings.MONITORING_WORKER_STALE_SECONDS
    data["refresh_seconds"] = DASHBOARD_REFRESH_SECONDS
    # Acknowledging an alert is acting on its execution: the policy's cancel right decides
    # (admins, the requester, whoever may run that work), not a role list of our own.
    for row in data["alerts"]:
        row["can_ack"] = policy.decide(
            request.user, policy.Right.CANCEL, execution=row["alert"].execution
        ).allowed
    return render(request, "monitoring/dashboard.html", data)


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    """Acknowledge one SLA alert (the cancel right on its execution; refusals recorded)."""
    alert = SlaAlert.objects.select_related("execution", "execution__tenant").filter(pk=alert_id).first()
    if alert is None:
        raise Http404("no such alert")
    try:
        policy.require(request.user, policy.Right.CANCEL, execution=alert.execution, door="page")
    except policy.RightDenied as denied:
        if denied.hidden:
            raise Http404("no such alert") from None  # another tenant's alert is simply unknown
        raise PermissionDenied(f"you may not acknowledge this alert: {denied.reason}") from None
    try:
        sla_alert_acknowledge(alert=alert, actor=request.user, comment=request.POST.get("comment", ""))
    except AlertAlreadyAcknowledged as done:
        messages.error(request, f"Not acknowledged: {done}.")
    else:
        messages.success(request, "Alert acknowledged.")
    return redirect("monitoring-dashboard")
