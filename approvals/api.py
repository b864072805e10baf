"""REST votes: ``POST /api/v1/executions/{id}/approve/`` and ``.../reject/`` (§9)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.errors import VoteConflict, VoteForbidden
from approvals.models import Approval, ApprovalVote
from approvals.selectors import execution_visible_to
from approvals.services import approval_vote


class VoteInput(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


def approval_payload(approval: Approval) -> dict[str, Any]:
    votes = list(approval.votes.select_related("voter"))
    return {
        "approval_id": str(approval.approval_id),
        "state": approval.state,
        "approval_level": approval.approval_level,
        "approvals": sum(1 for v in votes if v.decision == ApprovalVote.Decision.APPROVE),
        "expires_at": approval.expires_at.isoformat(),
        "responded_at": approval.responded_at.isoformat() if approval.responded_at else None,
        "approver": approval.approver.get_username() if approval.approver else None,
        "votes": [
            {
                "voter": v.voter.get_username(),
                "decision": v.decision,
                "comment": v.comment,
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
                    "approval": serializers.DictField(),
                },
            ),
            403: _refusal,
            404: _refusal,
            409: _refusal,
        },
    )
    def post(self, request: Request, execution_id: Any) -> Response:
        execution = execution_visible_to(user=request.user, execution_id=execution_id)
        if execution is None:
            raise NotFound("no such execution")
        approval = Approval.objects.filter(execution=execution).first()
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


class ExecutionApproveView(_VoteView):
    decision = ApprovalVote.Decision.APPROVE


class ExecutionRejectView(_VoteView):
    decision = ApprovalVote.Decision.REJECT
