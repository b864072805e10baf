"""System checks of the monitoring app (``manage.py check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_metrics_token(app_configs: object, **kwargs: object) -> list[Warning]:
    """/metrics names tenants: in production it answers 403 until it has a token."""
    if settings.DEV_MODE or settings.MONITORING_METRICS_TOKEN:
        return []
    return [
        Warning(
            "MONITORING_METRICS_TOKEN is not set: /metrics answers 403 while OPS_DEV is false",
            hint="set it and give Prometheus the same value as its bearer_token",
            id="monitoring.W001",
        )
    ]
