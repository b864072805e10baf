"""The confirmed requeue action for the dead-letter admin (approvals/dlq_admin.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory

from approvals.dlq_admin import requeue_dead_letters
from execution.enums import ExecutionStatus, Role
from execution.models import DeadLetter
from tests.approvals.conftest import ensure_policies, member
from tests.factories import DeadLetterFactory, ExecutionFactory

pytestmark = pytest.mark.django_db


class DeadLetterTestAdmin(admin.ModelAdmin):
    actions = [requeue_dead_letters]


def request_as(user: Any, data: dict[str, Any]) -> Any:
    request = RequestFactory().post("/admin/execution/deadletter/", data)
    request.user = user
    request.session = {}  # type: ignore[assignment]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    return request


def entry_of(tenant: Any, actor: Any) -> DeadLetter:
    ensure_policies()
    return DeadLetterFactory(
        execution=ExecutionFactory(tenant=tenant, actor=actor, status=ExecutionStatus.FAILED)
    )


def test_asks_for_confirmation_then_requeues(tenant: Any, requester: Any, dlq_calls: Any) -> None:
    boss = member(tenant, "boss", Role.ADMIN)
    entry = entry_of(tenant, requester)
    model_admin = DeadLetterTestAdmin(DeadLetter, admin.site)
    queryset = DeadLetter.objects.filter(pk=entry.pk)
    page = requeue_dead_letters(model_admin, request_as(boss, {ACTION_CHECKBOX_NAME: [entry.pk]}), queryset)
    assert page is not None
    assert "Yes, requeue" in page.render().content.decode()
    assert dlq_calls == []
    request = request_as(boss, {"confirm": "yes"})
    assert requeue_dead_letters(model_admin, request, queryset) is None
    assert len(dlq_calls) == 1
    assert DeadLetter.objects.get(pk=entry.pk).requeued
    assert any("requeued" in str(m) for m in request._messages)


def test_a_non_admin_is_refused(tenant: Any, requester: Any, approver: Any, dlq_calls: Any) -> None:
    entry = entry_of(tenant, requester)
    model_admin = DeadLetterTestAdmin(DeadLetter, admin.site)
    request = request_as(approver, {"confirm": "yes"})
    requeue_dead_letters(model_admin, request, DeadLetter.objects.filter(pk=entry.pk))
    assert dlq_calls == []
    assert any("only an admin" in str(m) for m in request._messages)
