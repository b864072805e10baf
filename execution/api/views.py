"""REST views of docs/contract.md#submission: thin adapters over services and selectors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.rules import ChangeFrozen
from execution import policy
from execution.api import serializers as s
from execution.api.access import dead_letter_for, execution_for
from execution.api.pagination import PAGE_PARAMETERS, StrictLimitOffsetPagination
from execution.api.payloads import dead_letter_payload, event_payload, execution_payload
from execution.clients.base import ServiceError
from execution.enums import Environment, ExecutionStatus
from execution.errors import AlreadyFinished, Conflict, KeyReused
from execution.masking import mask_text
from execution.plans import PlanInvalid
from execution.realtime.reader import event_types_parse
from execution.selectors import dead_letters_visible_to, execution_events_after, executions_visible_to
from execution.services.submit import SubmitDenied, SubmitOutcome, execution_submit_body

_detail = inline_serializer("Detail", {"detail": serializers.CharField()})
EVENTS_PAGE = 1000


def _paginated(name: str, item: serializers.Serializer) -> Any:
    """The LimitOffsetPagination envelope around ``item``, for the schema."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )


def _invalid(problems: list[Any]) -> Response:
    return Response(
        {
            "detail": "invalid submission",
            "errors": [{"path": p.path, "message": p.message} for p in problems],
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


def _refused(reason: str) -> Response:
    return Response({"detail": reason, "reason": reason}, status=status.HTTP_403_FORBIDDEN)


def submission_answer(submit: Callable[[], SubmitOutcome]) -> Response:
    """The docs/contract.md#submission answer of a submission (a plan posted, a runbook
    launched): 202/201/200 with the execution, or 400/403/422/503 with the reason."""
    try:
        outcome = submit()
    except PlanInvalid as exc:
        return _invalid(exc.problems)
    except SubmitDenied as exc:
        return _refused(exc.reason)
    except ChangeFrozen as exc:
        return Response(
            {"detail": str(exc), "reason": "change_freeze", "change_freeze": exc.freeze.summary()},
            status=status.HTTP_409_CONFLICT,
        )
    except KeyReused as exc:
        # Answering the holder would tell the caller its plan was accepted when it was not.
        return Response(
            {
                "detail": str(exc),
                "reason": "idempotency_key_reused",
                "execution_id": str(exc.execution_id),
            },
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    except ServiceError as exc:
        # The configured Asset Service could not resolve the targets: nothing was stored,
        # the pipeline may retry the same request (same idempotency key).
        return Response(
            {"detail": mask_text(str(exc)), "reason": "asset_service_unavailable"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    payload = execution_payload(outcome.execution, steps=outcome.steps)
    if outcome.freeze is not None:
        payload["change_freeze"] = outcome.freeze.summary()
    if outcome.replayed:
        return Response(payload, status=status.HTTP_200_OK, headers={"Idempotent-Replay": "true"})
    # 201 only for an immediate execution that ended while the request waited
    # (docs/contract.md#vocabulary).
    code = status.HTTP_201_CREATED if outcome.finished else status.HTTP_202_ACCEPTED
    return Response(payload, status=code, headers={"Location": payload["links"]["self"]})


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError({"detail": f"{field}: {message}", "errors": [{"path": field, "message": message}]})


def _datetime_param(request: Request, name: str) -> Any:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise _bad(name, "an ISO 8601 date-time is required")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        # PostgreSQL refuses offsets beyond +-15:59; UTC is always representable.
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _bad(name, "out of range") from None


class ExecutionListCreateView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        request=s.SubmissionIn,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={
            200: s.ExecutionOut,
            201: s.ExecutionOut,
            202: s.ExecutionOut,
            400: s.InvalidOut,
            401: _detail,
            403: s.RefusedOut,
            415: _detail,
            422: s.KeyReusedOut,
            503: s.RefusedOut,
        },
    )
    def post(self, request: Request) -> Response:
        try:
            body = request.data
        except ParseError as exc:
            return Response(
                {"detail": "malformed JSON", "errors": [{"path": "body", "message": str(exc.detail)}]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        header = request.headers.get("Idempotency-Key") or None
        if header is not None and len(header) > 255:
            return Response(
                {
                    "detail": "invalid submission",
                    "errors": [{"path": "Idempotency-Key", "message": "longer than 255 characters"}],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        return submission_answer(
            lambda: execution_submit_body(
                submitter=request.user,
                body=body,
                idempotency_header=header,
                traceparent=request.headers.get("traceparent"),
            )
        )

    @extend_schema(
        operation_id="v1_executions_list",  # a plain APIView's GET would collide with the detail's
        parameters=[
            OpenApiParameter("status", str, enum=ExecutionStatus.values),
            OpenApiParameter("environment", str, enum=Environment.values),
            OpenApiParameter("tag", str),
            OpenApiParameter("tenant", str),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: _paginated("PaginatedExecutionList", s.ExecutionSummaryOut(many=True)),
            400: s.InvalidOut,
            401: _detail,
        },
    )
    def get(self, request: Request) -> Response:
        queryset = executions_visible_to(request.user)
        params = request.query_params
        for key, values in params.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                raise _bad(key.replace("\x00", ""), "NUL characters are not allowed")
        if "status" in params:
            if params["status"] not in ExecutionStatus.values:
                raise _bad("status", f"one of {ExecutionStatus.values}")
            queryset = queryset.filter(status=params["status"])
        if "environment" in params:
            if params["environment"] not in Environment.values:
                raise _bad("environment", f"one of {Environment.values}")
            queryset = queryset.filter(environment=params["environment"])
        if "tag" in params:
            queryset = queryset.filter(tags__contains=[params["tag"]])
        if "tenant" in params:
            queryset = queryset.filter(tenant__slug=params["tenant"])
        after = _datetime_param(request, "created_after")
        if after is not None:
            queryset = queryset.filter(created_at__gte=after)
        before = _datetime_param(request, "created_before")
        if before is not None:
            queryset = queryset.filter(created_at__lt=before)
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(queryset, request, view=self) or []
        return paginator.get_paginated_response([execution_payload(e, with_steps=False) for e in page])


class ExecutionDetailView(APIView):
    @extend_schema(responses={200: s.ExecutionOut, 401: _detail, 404: _detail})
    def get(self, request: Request, execution_id: Any) -> Response:
        return Response(execution_payload(execution_for(request, execution_id, policy.Right.READ)))


class ExecutionEventsView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="only events with a larger id"),
            OpenApiParameter(
                "limit", int, description=f"at most this many (default and maximum {EVENTS_PAGE})"
            ),
            OpenApiParameter(
                "types", str, description="comma-separated event types to keep, e.g. failed,step_output"
            ),
        ],
        responses={200: s.EventPageOut, 400: s.InvalidOut, 401: _detail, 404: _detail},
    )
    def get(self, request: Request, execution_id: Any) -> Response:
        execution = execution_for(request, execution_id, policy.Right.READ)
        try:
            after = int(request.query_params["after"]) if request.query_params.get("after") else None
            limit = int(request.query_params.get("limit") or EVENTS_PAGE)
        except ValueError:
            raise _bad("after", "integers are required for after and limit") from None
        limit = max(1, min(limit, EVENTS_PAGE))
        try:
            types = event_types_parse(request.query_params.get("types"))
        except ValueError as error:
            raise _bad("types", str(error)) from None
        events_qs = execution_events_after(execution=execution, after=after).select_related("actor")
        if types is not None:
            events_qs = events_qs.filter(event_type__in=sorted(types))
        events = list(events_qs[:limit])
        return Response(
            {"results": [event_payload(e) for e in events], "last_id": events[-1].pk if events else after}
        )


class ExecutionCancelView(APIView):
    @extend_schema(
        request=s.CancelIn,
        responses={
            200: s.ExecutionOut,
            400: s.InvalidOut,
            401: _detail,
            403: s.RefusedOut,
            404: _detail,
            409: s.FinishedOut,
        },
    )
    def post(self, request: Request, execution_id: Any) -> Response:
        from execution.services.cancel import execution_cancel

        try:
            data = request.data
        except ParseError as exc:
            raise _bad("body", str(exc.detail)) from None
        body = s.CancelIn(data=data if isinstance(data, dict) else {})
        if not body.is_valid():
            field, problems = next(iter(body.errors.items()))
            raise _bad(field, str(problems[0]))
        execution = execution_for(request, execution_id, policy.Right.CANCEL)
        try:
            execution = execution_cancel(
                execution=execution, actor=request.user, reason=body.validated_data.get("reason", "")
            )
        except AlreadyFinished as exc:
            return Response(
                {"detail": str(exc), "reason": "already_finished", "status": exc.status},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(execution_payload(execution))


class DeadLetterListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("open", bool, description="only entries not requeued nor archived"),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: _paginated("PaginatedDeadLetterList", s.DeadLetterOut(many=True)),
            400: s.InvalidOut,
            401: _detail,
        },
    )
    def get(self, request: Request) -> Response:
        queryset = dead_letters_visible_to(request.user)
        open_only = request.query_params.getlist("open")
        if len(open_only) > 1 or (open_only and open_only[0] not in ("true", "false")):
            raise _bad("open", "true or false")
        if open_only == ["true"]:
            queryset = queryset.filter(requeued=False, archived=False)
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(queryset, request, view=self) or []
        return paginator.get_paginated_response([dead_letter_payload(d) for d in page])


class DeadLetterRequeueView(APIView):
    @extend_schema(
        request=None,
        responses={200: s.ExecutionOut, 401: _detail, 403: s.RefusedOut, 404: _detail, 409: s.RefusedOut},
    )
    def post(self, request: Request, dlq_id: Any) -> Response:
        from execution.services.dlq import dlq_requeue

        entry = dead_letter_for(request, dlq_id, policy.Right.REQUEUE)
        try:
            execution = dlq_requeue(entry=entry, operator=request.user)
        except Conflict as exc:
            return Response({"detail": str(exc), "reason": "conflict"}, status=status.HTTP_409_CONFLICT)
        return Response(execution_payload(execution))
