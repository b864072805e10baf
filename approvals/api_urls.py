"""REST vote endpoints under /api/v1/executions/<id>/approve|reject/ (issue 5)."""

from __future__ import annotations

from django.urls import path

from approvals.api import ExecutionApproveView, ExecutionRejectView

urlpatterns = [
    path("executions/<uuid:execution_id>/approve/", ExecutionApproveView.as_view(), name="execution-approve"),
    path("executions/<uuid:execution_id>/reject/", ExecutionRejectView.as_view(), name="execution-reject"),
]
