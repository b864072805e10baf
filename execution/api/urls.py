"""REST API under /api/v1/; the vote endpoints live in approvals/api_urls.py.

Ids are matched as strings and parsed in the views, so a malformed id is a JSON 404, not
Django's HTML one.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from execution.api import targets, tokens, views
from execution.runbooks import api as runbooks

urlpatterns = [
    path("executions/", views.ExecutionListCreateView.as_view(), name="execution-list"),
    path("executions/<str:execution_id>/", views.ExecutionDetailView.as_view(), name="execution-detail"),
    path(
        "executions/<str:execution_id>/events/", views.ExecutionEventsView.as_view(), name="execution-events"
    ),
    path(
        "executions/<str:execution_id>/cancel/", views.ExecutionCancelView.as_view(), name="execution-cancel"
    ),
    path(
        "executions/<str:execution_id>/steps/<str:step_index>/targets/",
        targets.StepTargetsView.as_view(),
        name="execution-step-targets",
    ),
    path("dlq/", views.DeadLetterListView.as_view(), name="dlq-list"),
    path("dlq/<str:dlq_id>/requeue/", views.DeadLetterRequeueView.as_view(), name="dlq-requeue"),
    path("tokens/", tokens.TokenListCreateView.as_view(), name="token-list"),
    path("tokens/<str:token_id>/", tokens.TokenDetailView.as_view(), name="token-detail"),
    path("runbooks/", runbooks.RunbookListCreateView.as_view(), name="runbook-list"),
    path("runbooks/<str:slug>/", runbooks.RunbookDetailView.as_view(), name="runbook-detail"),
    path(
        "runbooks/<str:slug>/versions/", runbooks.RunbookVersionCreateView.as_view(), name="runbook-versions"
    ),
    path("runbooks/<str:slug>/launch/", runbooks.RunbookLaunchView.as_view(), name="runbook-launch"),
    path("runbooks/<str:slug>/triggers/", runbooks.TriggerCreateView.as_view(), name="runbook-triggers"),
    path("hooks/<str:hook_id>/", runbooks.HookView.as_view(), name="hook"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
]
