"""Operator pages /approvals/ and /dlq/."""

from __future__ import annotations

from django.urls import path

from approvals.views import approvals, dlq, links

app_name = "approvals"

urlpatterns = [
    path("approvals/", approvals.approval_list, name="list"),
    path("approvals/<uuid:approval_id>/", approvals.approval_detail, name="detail"),
    path("approvals/link/<str:token>/", links.approval_link_open, name="link"),
    path("dlq/", dlq.dlq_list, name="dlq"),
    path("dlq/<uuid:dlq_id>/requeue/", dlq.dlq_requeue_view, name="dlq-requeue"),
]
