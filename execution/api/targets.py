"""``GET /api/v1/executions/{id}/steps/{i}/targets/?status=``: a fleet step's targets,
paginated (docs/fleet.md, docs/api.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from execution import policy
from execution.api.access import execution_for
from execution.api.pagination import PAGE_PARAMETERS, StrictLimitOffsetPagination
from execution.api.payloads import target_payload
from execution.enums import TargetStatus
from execution.masking import mask_data
from execution.models import StepTarget


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError({"detail": f"{field}: {message}", "errors": [{"path": field, "message": message}]})


class StepTargetsView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status",
                str,
                description=f"comma-separated statuses to keep: {', '.join(TargetStatus.values)}",
            ),
            *PAGE_PARAMETERS,
        ],
        responses={200: inline_serializer("StepTargetPage", {"count": serializers.IntegerField()})},
    )
    def get(self, request: Request, execution_id: Any, step_index: int) -> Response:
        execution = execution_for(request, execution_id, policy.Right.READ)
        steps = (execution.plan_snapshot or {}).get("steps") or []
        if not 0 <= step_index < len(steps) or not isinstance(steps[step_index].get("targets"), list):
            raise NotFound({"detail": f"step {step_index} of this execution is not a fleet step"})
        queryset = StepTarget.objects.filter(execution_id=execution.execution_id, step_index=step_index)
        raw = request.query_params.get("status")
        if raw:
            wanted = [part.strip() for part in raw.split(",") if part.strip()]
            unknown = [w for w in wanted if w not in TargetStatus.values]
            if unknown:
                raise _bad("status", f"unknown status {unknown[0][:32]!r}; one of {TargetStatus.values}")
            queryset = queryset.filter(status__in=wanted)
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(queryset.order_by("target_index"), request, view=self) or []
        return paginator.get_paginated_response(mask_data([target_payload(row) for row in page]))
