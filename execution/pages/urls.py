"""Operator pages (docs/contract.md#live-progress, docs/contract.md#operator-console): home, executions, one
execution and its actions, audit, members."""

from __future__ import annotations

from typing import Any

from django.urls import path

from execution.pages import audit, detail, executions, home, members, runbooks

urlpatterns: list[Any] = [
    path("", home.home_page, name="home"),
    path("executions/", executions.executions_list_page, name="executions_page"),
    path("executions/rows/", executions.executions_rows_fragment, name="executions_rows"),
    path("executions/<uuid:execution_id>/", detail.execution_detail_page, name="execution_page"),
    path(
        "executions/<uuid:execution_id>/steps/<int:step_index>/statuses/",
        detail.execution_fleet_statuses,
        name="execution_fleet_statuses",
    ),
    path(
        "executions/<uuid:execution_id>/cancel/", detail.execution_cancel_page, name="execution_cancel_page"
    ),
    path(
        "executions/<uuid:execution_id>/run-again/",
        detail.execution_run_again_page,
        name="execution_run_again_page",
    ),
    path(
        "executions/<uuid:execution_id>/output.txt",
        detail.execution_output_download,
        name="execution_output_download",
    ),
    path("runbooks/", runbooks.runbooks_page, name="runbooks_page"),
    path("runbooks/<slug:tenant_slug>/<slug:slug>/", runbooks.runbook_page, name="runbook_page"),
    path(
        "runbooks/<slug:tenant_slug>/<slug:slug>/launch/",
        runbooks.runbook_launch_page,
        name="runbook_launch_page",
    ),
    path("audit/", audit.audit_page, name="audit_page"),
    path("tenants/", members.tenants_page, name="tenants_page"),
    path("tenants/<slug:slug>/members/", members.members_page, name="members_page"),
]
