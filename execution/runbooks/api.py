"""REST doors of runbooks (docs/runbooks.md#rest): list, create, read, add a version, launch.
Thin adapters over execution/runbooks/services.py; a launch answers like a submission."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from execution import errors, policy
from execution.api import serializers as s
from execution.api.pagination import PAGE_PARAMETERS, StrictLimitOffsetPagination
from execution.api.views import submission_answer
from execution.models import Tenant
from execution.plans import PlanInvalid
from execution.runbooks import services
from execution.runbooks.models import Runbook, RunbookVersion
from execution.runbooks.payloads import runbook_payload, version_payload
from execution.runbooks.selectors import runbook_find, runbooks_visible_to

_detail = inline_serializer("RunbookDetail", {"detail": serializers.CharField()})


class RunbookVersionIn(serializers.Serializer):
    tenant = serializers.CharField(max_length=64)
    parameters = serializers.DictField(
        required=False, help_text="a JSON Schema object: properties (string/integer/boolean), required"
    )
    plan = serializers.DictField(help_text="a plan whose string values may hold {{ params.NAME }}")
    min_approval_level = serializers.IntegerField(required=False, min_value=0, max_value=3)


class RunbookIn(RunbookVersionIn):
    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)


class RunbookVersionOut(serializers.Serializer):
    number = serializers.IntegerField()
    parameters = serializers.DictField()
    plan = serializers.DictField()
    min_approval_level = serializers.IntegerField()
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class RunbookOut(serializers.Serializer):
    tenant = serializers.CharField()
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    owner = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    version = serializers.IntegerField(allow_null=True, help_text="the version a launch uses")
    versions = RunbookVersionOut(many=True)
    links = serializers.DictField(child=serializers.CharField())


class LaunchIn(serializers.Serializer):
    tenant = serializers.CharField(max_length=64)
    params = serializers.DictField(required=False)
    dry_run = serializers.BooleanField(required=False)
    version = serializers.IntegerField(required=False, help_text="default: the latest")


def _body(request: Request) -> dict[str, Any]:
    try:
        data = request.data
    except ParseError as exc:
        raise _bad("body", str(exc.detail)) from None
    if not isinstance(data, dict):
        raise _bad("body", "a JSON object is required")
    return data


class _Invalid(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _bad(path: str, message: str) -> _Invalid:
    return _Invalid(_problems([(path, message)]))


def _problems(items: list[tuple[str, str]]) -> Response:
    return Response(
        {
            "detail": "; ".join(f"{p}: {m}" for p, m in items),
            "errors": [{"path": p, "message": m} for p, m in items],
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


def _refused(denied: policy.RightDenied, what: str) -> Response:
    if denied.hidden:
        return Response({"detail": f"no such {what}"}, status=status.HTTP_404_NOT_FOUND)
    return Response({"detail": denied.reason, "reason": denied.reason}, status=status.HTTP_403_FORBIDDEN)


def _tenant(request: Request, slug: Any) -> Tenant:
    """The tenant named by a body, if the user belongs to it (else 404 like an unknown one)."""
    if not isinstance(slug, str) or not slug:
        raise _bad("tenant", "a tenant slug is required")
    tenant = Tenant.objects.filter(
        slug=slug, pk__in=policy.tenant_ids_where(request.user, policy.Right.READ)
    ).first()
    if tenant is None:
        raise NotFound(f"no such tenant {slug!r}")
    return tenant


def _versions(runbook: Runbook) -> list[RunbookVersion]:
    return list(runbook.versions.select_related("created_by"))


def _guarded(handler: Any) -> Any:
    def wrapped(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return handler(self, request, *args, **kwargs)  # type: ignore[no-any-return]
        except _Invalid as invalid:
            return invalid.response
        except PlanInvalid as exc:
            return _problems([(p.path, p.message) for p in exc.problems])
        except errors.NotFound as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        except errors.Conflict as exc:
            return Response({"detail": str(exc), "reason": "conflict"}, status=status.HTTP_409_CONFLICT)
        except policy.RightDenied as denied:
            return _refused(denied, "runbook")

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


_TENANT = OpenApiParameter("tenant", str, description="needed when several of your tenants have the slug")


class RunbookListCreateView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="v1_runbooks_list",
        parameters=[OpenApiParameter("tenant", str), OpenApiParameter("tag", str), *PAGE_PARAMETERS],
        responses={
            200: inline_serializer(
                "PaginatedRunbookList",
                {
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": RunbookOut(many=True),
                },
            ),
            400: s.InvalidOut,
            401: _detail,
        },
    )
    @_guarded
    def get(self, request: Request) -> Response:
        queryset = runbooks_visible_to(request.user).prefetch_related(
            Prefetch("versions", queryset=RunbookVersion.objects.select_related("created_by"))
        )
        if request.query_params.get("tenant"):
            queryset = queryset.filter(tenant__slug=request.query_params["tenant"])
        if request.query_params.get("tag"):
            queryset = queryset.filter(tags__contains=[request.query_params["tag"]])
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(queryset, request, view=self) or []
        return paginator.get_paginated_response(
            [runbook_payload(r, versions=list(r.versions.all())[:1]) for r in page]
        )

    @extend_schema(
        request=RunbookIn,
        responses={
            201: RunbookOut,
            400: s.InvalidOut,
            401: _detail,
            403: s.RefusedOut,
            404: _detail,
            409: s.RefusedOut,
        },
    )
    @_guarded
    def post(self, request: Request) -> Response:
        """Create a runbook and its version 1 (tenant admins)."""
        body = _body(request)
        tenant = _tenant(request, body.get("tenant"))
        runbook = services.runbook_create(
            tenant=tenant,
            actor=request.user,
            slug=body.get("slug", ""),
            name=body.get("name", ""),
            description=body.get("description", ""),
            tags=body.get("tags"),
            parameters=body.get("parameters"),
            plan=body.get("plan"),
            min_approval_level=body.get("min_approval_level", 0),
            door="rest",
        )
        return Response(runbook_payload(runbook, versions=_versions(runbook)), status=status.HTTP_201_CREATED)


class RunbookDetailView(APIView):
    @extend_schema(parameters=[_TENANT], responses={200: RunbookOut, 401: _detail, 404: _detail})
    @_guarded
    def get(self, request: Request, slug: str) -> Response:
        runbook = runbook_find(request.user, slug=slug, tenant=request.query_params.get("tenant"))
        return Response(runbook_payload(runbook, versions=_versions(runbook)))


class RunbookVersionCreateView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        request=RunbookVersionIn,
        responses={201: RunbookVersionOut, 400: s.InvalidOut, 401: _detail, 403: s.RefusedOut, 404: _detail},
    )
    @_guarded
    def post(self, request: Request, slug: str) -> Response:
        """Add a version (tenant admins); the earlier versions stay as they are."""
        body = _body(request)
        runbook = runbook_find(request.user, slug=slug, tenant=_tenant(request, body.get("tenant")).slug)
        version = services.runbook_version_add(
            runbook=runbook,
            actor=request.user,
            parameters=body.get("parameters"),
            plan=body.get("plan"),
            min_approval_level=body.get("min_approval_level", 0),
            door="rest",
        )
        return Response(version_payload(version), status=status.HTTP_201_CREATED)


class RunbookLaunchView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        request=LaunchIn,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={
            200: s.ExecutionOut,
            201: s.ExecutionOut,
            202: s.ExecutionOut,
            400: s.InvalidOut,
            401: _detail,
            403: s.RefusedOut,
            404: _detail,
            422: s.KeyReusedOut,
            503: s.RefusedOut,
        },
    )
    @_guarded
    def post(self, request: Request, slug: str) -> Response:
        """Render the runbook with ``params`` and submit the plan (answers like a submission)."""
        body = _body(request)
        runbook = runbook_find(request.user, slug=slug, tenant=_tenant(request, body.get("tenant")).slug)
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise _bad("dry_run", "must be true or false")
        version = body.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise _bad("version", "must be a version number")
        header = request.headers.get("Idempotency-Key") or None
        if header is not None and len(header) > 255:
            raise _bad("Idempotency-Key", "longer than 255 characters")
        return submission_answer(
            lambda: services.runbook_launch(
                runbook=runbook,
                actor=request.user,
                params=body.get("params"),
                version=version,
                dry_run=dry_run,
                idempotency_header=header,
            )
        )


class TriggerIn(serializers.Serializer):
    tenant = serializers.CharField(max_length=64)
    mapping = serializers.DictField(child=serializers.CharField(), help_text="parameter -> JSON pointer")
    format = serializers.ChoiceField(choices=["json", "alertmanager"], required=False)


class TriggerOut(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    secret = serializers.CharField(help_text="shown once: the HMAC-SHA256 key of the hook")
    format = serializers.CharField()
    mapping = serializers.DictField()


class TriggerCreateView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        request=TriggerIn,
        responses={201: TriggerOut, 400: s.InvalidOut, 401: _detail, 403: s.RefusedOut, 404: _detail},
    )
    @_guarded
    def post(self, request: Request, slug: str) -> Response:
        """A hook of the runbook (tenant admins), launched as its creator; the secret is shown once."""
        from execution.runbooks.triggers import trigger_create

        body = _body(request)
        runbook = runbook_find(request.user, slug=slug, tenant=_tenant(request, body.get("tenant")).slug)
        created = trigger_create(
            runbook=runbook,
            actor=request.user,
            mapping=body.get("mapping", {}),
            fmt=body.get("format", "json"),
            door="rest",
        )
        trigger = created.trigger
        return Response(
            {
                "id": str(trigger.trigger_id),
                "url": f"/api/v1/hooks/{trigger.trigger_id}/",
                "secret": created.secret,
                "format": trigger.format,
                "mapping": trigger.mapping,
            },
            status=status.HTTP_201_CREATED,
        )


class HookOut(serializers.Serializer):
    # Not required: a body refused before the hook reads it (NUL characters, too deep) is a
    # 400 with ``detail`` and ``errors`` only.
    detail = serializers.CharField(required=False)
    trigger = serializers.UUIDField(required=False)
    executions = s.ExecutionSummaryOut(many=True, required=False)
    errors = s.ProblemOut(many=True, required=False)  # type: ignore[assignment]  # a field, not .errors
    refused = serializers.ListField(child=serializers.CharField(), required=False)
    ignored = serializers.IntegerField(required=False, help_text="resolved alerts not launched")


class HookView(APIView):
    """Signed by the hook's secret, not by a token (docs/runbooks.md#triggers)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(
        request={"application/json": dict},
        parameters=[
            OpenApiParameter("X-OpsConductor-Timestamp", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-OpsConductor-Signature", str, OpenApiParameter.HEADER, required=True),
        ],
        responses={
            202: HookOut,
            400: HookOut,
            401: _detail,
            403: HookOut,
            404: _detail,
            409: _detail,
            429: _detail,
        },
    )
    def post(self, request: Request, hook_id: str) -> Response:
        from execution.api.access import uuid_or_404
        from execution.api.payloads import execution_payload
        from execution.runbooks.triggers import HookRefused, trigger_receive

        try:
            received = trigger_receive(
                trigger_id=uuid_or_404(hook_id, "hook"),
                timestamp=request.headers.get("X-OpsConductor-Timestamp"),
                signature=request.headers.get("X-OpsConductor-Signature"),
                body=request.body,
            )
        except HookRefused as refused:
            headers = {"Retry-After": "60"} if refused.status == 429 else {}
            return Response({"detail": refused.reason}, status=refused.status, headers=headers)
        launched = [one for one in received.launches if one.outcome]
        problems = [p for one in received.launches for p in one.problems]
        refusals = [one.refused for one in received.launches if one.refused]
        body = {
            "trigger": str(received.trigger.trigger_id),
            "executions": [
                {
                    **execution_payload(one.outcome.execution, with_steps=False),
                    "replayed": one.outcome.replayed,
                }
                for one in launched
                if one.outcome
            ],
            "errors": [{"path": p.path, "message": p.message} for p in problems],
            "refused": refusals,
            "ignored": received.ignored,
        }
        code: int
        if launched or not (problems or refusals):
            code = status.HTTP_202_ACCEPTED
        else:
            code = status.HTTP_400_BAD_REQUEST if problems else status.HTTP_403_FORBIDDEN
        return Response(body, status=code)
