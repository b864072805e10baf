"""REST votes: ``POST /api/v1/executions/{id}/approve/`` and ``.../reject/`` (docs/contract.md#approvals)."""

from __future__ import annotations

from typing import Any

from django.db.models import IntegerField, Value
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.errors import VoteConflict, VoteForbidden, VoteInvalid
from approvals.models import AnyApproval, Approval, ApprovalVote, GateApproval
from approvals.run_window import window_payload
from approvals.selectors import open_approval
from approvals.services import approval_vote
from execution import policy
from execution.api.access import execution_for
from execution.api.pagination import PAGE_PARAMETERS, StrictLimitOffsetPagination
from execution.enums import ApprovalState
from execution.masking import mask_text
from execution.selectors import approvals_visible_to, gate_approvals_visible_to


class VoteInput(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    window_start = serializers.DateTimeField(required=False, help_text="approve for a run window: its start")
    window_end = serializers.DateTimeField(required=False, help_text="approve for a run window: its end")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("window_start", "window_end") if name in attrs]
        if len(given) == 1:
            missing = "window_end" if given == ["window_start"] else "window_start"
            raise ValidationError({missing: "a run window needs both its start and its end"})
        return attrs


class VoteOut(serializers.Serializer):
    voter = serializers.CharField()
    decision = serializers.ChoiceField(choices=ApprovalVote.Decision.choices)
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class ApprovalOut(serializers.Serializer):
    """The shape of ``approval_payload`` (documentation for the schema)."""

    approval_id = serializers.UUIDField()
    execution_id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=ApprovalState.choices)
    approval_level = serializers.IntegerField()
    step_index = serializers.IntegerField(
        allow_null=True, help_text="the gate step this approval is for; null: the pre-run approval"
    )
    message = serializers.CharField(help_text="the gate's message to its approvers")
    approvals = serializers.IntegerField(help_text="approve votes so far")
    expires_at = serializers.DateTimeField()
    responded_at = serializers.DateTimeField(allow_null=True)
    run_window = serializers.DictField(
        allow_null=True, help_text="{start, end}: the run window the approval was given for"
    )
    approver = serializers.CharField(allow_null=True, help_text="the voter who completed the outcome")
    votes = VoteOut(many=True)


def approval_payload(approval: AnyApproval) -> dict[str, Any]:
    votes: list[Any] = list(approval.votes.all())
    return {
        "approval_id": str(approval.approval_id),
        "execution_id": str(approval.execution.execution_id),
        "state": approval.state,
        "approval_level": approval.approval_level,
        "step_index": approval.step_index,
        "message": mask_text(approval.message),
        "approvals": sum(1 for v in votes if v.decision == ApprovalVote.Decision.APPROVE),
        "expires_at": approval.expires_at.isoformat(),
        "responded_at": approval.responded_at.isoformat() if approval.responded_at else None,
        "run_window": window_payload(approval),
        "approver": approval.approver.get_username() if approval.approver else None,
        "votes": [
            {
                "voter": v.voter_name,
                "decision": v.decision,
                "comment": mask_text(v.comment),
                "created_at": v.created_at.isoformat(),
            }
            for v in votes
        ],
    }


_refusal = inline_serializer(
    "VoteRefused", {"detail": serializers.CharField(), "reason": serializers.CharField()}
)


class _VoteView(APIView):
    decision: str = ""

    @extend_schema(
        request=VoteInput,
        responses={
            200: inline_serializer(
                "VoteResult",
                {
                    "execution_id": serializers.UUIDField(),
                    "status": serializers.CharField(),
                    "approval": ApprovalOut(),
                },
            ),
            400: inline_serializer(
                "VoteInvalid",
                {
                    "detail": serializers.CharField(),
                    "errors": serializers.ListField(child=serializers.DictField()),
                },
            ),
            403: _refusal,
            404: _refusal,
            409: _refusal,
        },
    )
    def post(self, request: Request, execution_id: Any) -> Response:
        execution = execution_for(request, execution_id, policy.Right.READ)
        # The execution's open approval: a waiting gate's, else the pre-run one.
        approval = open_approval(execution)
        if approval is None:
            return Response(
                {"detail": "this execution needs no approval", "reason": "no_approval"},
                status=status.HTTP_409_CONFLICT,
            )
        data = VoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = approval_vote(
                approval=approval,
                voter=request.user,
                decision=self.decision,
                comment=data.validated_data["comment"],
                window=_window(data.validated_data),
            )
        except VoteInvalid as invalid:
            return Response(
                {"detail": invalid.reason, "errors": [{"path": invalid.field, "message": invalid.reason}]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        except VoteForbidden as refused:
            return Response(
                {"detail": refused.reason, "reason": refused.code}, status=status.HTTP_403_FORBIDDEN
            )
        except VoteConflict as refused:
            return Response(
                {"detail": refused.reason, "reason": refused.code}, status=status.HTTP_409_CONFLICT
            )
        execution.refresh_from_db()
        return Response(
            {
                "execution_id": str(execution.execution_id),
                "status": execution.status,
                "approval": approval_payload(result),
            }
        )


def _window(data: dict[str, Any]) -> tuple[Any, Any] | None:
    return (data["window_start"], data["window_end"]) if "window_start" in data else None


class ExecutionApproveView(_VoteView):
    decision = ApprovalVote.Decision.APPROVE


class ExecutionRejectView(_VoteView):
    decision = ApprovalVote.Decision.REJECT


class ApprovalListView(APIView):
    """``GET /api/v1/approvals/?state=pending&tenant=<slug>``: approvals of the user's tenants,
    soonest expiry first."""

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=list(ApprovalState.values)),
            OpenApiParameter("tenant", str, description="one of your tenants"),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: inline_serializer(
                "PaginatedApprovalList",
                {
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": ApprovalOut(many=True),
                },
            ),
            400: OpenApiTypes.OBJECT,
        },
    )
    def get(self, request: Request) -> Response:
        state = request.query_params.get("state")
        if state and state not in ApprovalState.values:
            raise ValidationError({"state": f"one of {ApprovalState.values}"})
        tenant = request.query_params.get("tenant")
        keys = []
        for kind, visible in enumerate((approvals_visible_to, gate_approvals_visible_to)):
            queryset = visible(request.user)
            if state:
                queryset = queryset.filter(state=state)
            if tenant:
                queryset = queryset.filter(execution__tenant__slug=tenant)
            keys.append(queryset.values("expires_at", "id").annotate(kind=Value(kind, IntegerField())))
        # Pre-run and gate approvals in one page, soonest expiry first: the union of their keys
        # is counted and sliced by the database, then the page's rows are read.
        combined = keys[0].union(keys[1], all=True).order_by("expires_at", "kind", "id")
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(combined, request, view=self) or []
        rows: dict[tuple[int, int], AnyApproval] = {}
        models: tuple[type[AnyApproval], ...] = (Approval, GateApproval)
        for kind, model in enumerate(models):
            ids = [key["id"] for key in page if key["kind"] == kind]
            found = (
                model.objects.filter(pk__in=ids)
                .select_related("execution", "execution__tenant", "approver")
                .prefetch_related("votes__voter")
            )
            rows.update({(kind, row.pk): row for row in found})
        return paginator.get_paginated_response([approval_payload(rows[(k["kind"], k["id"])]) for k in page])
