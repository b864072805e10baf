"""/healthz, /readyz, /metrics and the /monitoring/ dashboard (§12): thin adapters."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from monitoring.charts import bar_chart, histogram_chart
from monitoring.metrics import metrics_render
from monitoring.selectors.dashboard import dashboard_data, monitoring_allowed
from monitoring.selectors.figures import EXECUTION_BUCKETS, Histogram
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
    """Prometheus text format; with MONITORING_METRICS_TOKEN set, ``Authorization: Bearer`` it."""
    token = settings.MONITORING_METRICS_TOKEN
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


@login_required
@never_cache
def dashboard(request: HttpRequest) -> HttpResponse:
    if not monitoring_allowed(request.user):
        raise PermissionDenied("the dashboard is for staff and tenant members")
    data = dashboard_data(user=request.user)
    durations = _merged(data["histograms"])
    data["status_chart"] = bar_chart(
        [(status, count) for status, count in data["by_status"].items()], title="Executions by status"
    )
    data["queue_chart"] = bar_chart(
        [(sla, row["pending"]) for sla, row in data["queue"].items()],
        title="Pending queue items by SLA class",
    )
    data["duration_chart"] = histogram_chart(
        durations.buckets, durations.count, title="Execution run time (seconds, all time)"
    )
    data["stale_seconds"] = settings.MONITORING_WORKER_STALE_SECONDS
    return render(request, "monitoring/dashboard.html", data)
