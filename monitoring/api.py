"""``GET /api/v1/metrics/summary?window=1h[&tenant=<slug>]`` (DRF, authenticated, tenant-scoped)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from execution.models import Tenant
from monitoring.selectors.dashboard import monitoring_tenant_ids
from monitoring.selectors.summary import metrics_summary, window_parse


class MetricsSummaryView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("window", str, description="90s, 15m, 1h (default), 7d"),
            OpenApiParameter("tenant", str, description="one of your tenants (default: all of them)"),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        try:
            window = window_parse(request.query_params.get("window", "1h"))
        except ValueError as exc:
            raise ValidationError(
                {"detail": f"window: {exc}", "errors": [{"path": "window", "message": str(exc)}]}
            ) from None
        tenant_ids = monitoring_tenant_ids(request.user)
        slug = request.query_params.get("tenant")
        if slug:
            tenant = Tenant.objects.filter(slug=slug).first()
            # Another tenant is simply unknown (docs/contract.md#rbac: never 403 vs 404 across tenants).
            if tenant is None or tenant.pk not in tenant_ids:
                raise NotFound("no such tenant")
            tenant_ids = [tenant.pk]
        summary = metrics_summary(window=window, tenant_ids=tenant_ids)
        summary["tenants"] = sorted(Tenant.objects.filter(pk__in=tenant_ids).values_list("slug", flat=True))
        return Response(summary)
