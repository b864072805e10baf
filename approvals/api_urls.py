"""REST under /api/v1/: executions/<id>/approve|reject/ and approvals/."""

from __future__ import annotations

from django.urls import path

from approvals.api import ApprovalListView, ExecutionApproveView, ExecutionRejectView

urlpatterns = [
    path("approvals/", ApprovalListView.as_view(), name="approval-list"),
    path("executions/<uuid:execution_id>/approve/", ExecutionApproveView.as_view(), name="execution-approve"),
    path("executions/<uuid:execution_id>/reject/", ExecutionRejectView.as_view(), name="execution-reject"),
]
