"""/healthz, /readyz, /metrics, /monitoring/, /api/v1/metrics/summary (issue 8)."""

from __future__ import annotations

from django.urls import path

from monitoring.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
]
