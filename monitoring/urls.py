"""/healthz, /readyz, /metrics, /monitoring/, /api/v1/metrics/summary (docs/contract.md#monitoring)."""

from __future__ import annotations

from django.urls import include, path

from monitoring.api import MetricsSummaryView
from monitoring.views import alert_acknowledge, dashboard, healthz, metrics, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("monitoring/", dashboard, name="monitoring-dashboard"),
    path("notifications/", include("monitoring.notifications.urls")),
    path("monitoring/alerts/<int:alert_id>/acknowledge/", alert_acknowledge, name="monitoring-alert-ack"),
    path("api/v1/metrics/summary", MetricsSummaryView.as_view(), name="metrics-summary"),
]
