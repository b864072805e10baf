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
from execution.api import serializers as s
from execution.api.access import execution_for
from execution.api.pagination import PAGE_PARAMETERS, StrictLimitOffsetPagination
from execution.api.payloads import target_payload
from execution.enums import TargetStatus
from execution.masking import mask_data
from execution.models import StepTarget

_detail = inline_serializer("StepTargetsDetail", {"detail": serializers.CharField()})


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError({"detail": f"{field}: {message}", "errors": [{"path": field, "message": message}]})


def _step_index(raw: str) -> int:
    """The path's step index: a 400 naming it, not the router's HTML 404, when it is no number."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
        raise _bad("step_index", "must be a step's index: a whole number from 0")
    return int(raw)


class StepTargetsView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("step_index", int, OpenApiParameter.PATH, description="the step index, from 0"),
            OpenApiParameter(
                "status",
                str,
                description=f"comma-separated statuses to keep: {', '.join(TargetStatus.values)}",
            ),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: inline_serializer("StepTargetPage", {"count": serializers.IntegerField()}),
            400: s.InvalidOut,
            401: _detail,
            404: _detail,
        },
    )
    def get(self, request: Request, execution_id: Any, step_index: str) -> Response:
        execution = execution_for(request, execution_id, policy.Right.READ)
        index = _step_index(step_index)
        steps = (execution.plan_snapshot or {}).get("steps") or []
        if not index < len(steps) or not isinstance(steps[index].get("targets"), list):
            raise NotFound({"detail": f"step {index} of this execution is not a fleet step"})
        queryset = StepTarget.objects.filter(execution_id=execution.execution_id, step_index=index)
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
