"""Operator pages /executions/ (§11)."""

from __future__ import annotations

from typing import Any

from django.urls import path

from execution.pages.views import execution_cancel_page, execution_detail_page, executions_list_page

urlpatterns: list[Any] = [
    path("executions/", executions_list_page, name="executions_page"),
    path("executions/<uuid:execution_id>/", execution_detail_page, name="execution_page"),
    path("executions/<uuid:execution_id>/cancel/", execution_cancel_page, name="execution_cancel_page"),
]
