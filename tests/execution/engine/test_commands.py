"""``manage.py dlq|cancel|reap`` and the DLQ admin action, through their real entry points."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.core.management import CommandError, call_command
from django.utils import timezone

from execution.enums import ExecutionStatus, QueueStatus, Role
from execution.models import DeadLetter, Execution, QueueItem
from execution.services.dlq import dlq_record
from execution.services.transition import transition
from tests.execution.engine.helpers import enqueue, make_execution
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _dead_letter(tenant, actor) -> DeadLetter:  # type: ignore[no-untyped-def]
    execution = make_execution(tenant=tenant, actor=actor, steps=[{"type": "noop"}])
    enqueue(execution)
    transition(execution, ExecutionStatus.RUNNING)
    transition(execution, ExecutionStatus.FAILED, reason="test")
    return dlq_record(execution=execution, reason="worker_lost", last_error="boom")


def test_dlq_command_lists_requeues_and_archives(tenant, operator, tenant_admin, capsys) -> None:  # type: ignore[no-untyped-def]
    first, second = _dead_letter(tenant, operator), _dead_letter(tenant, operator)
    call_command("dlq", "list")
    listed = capsys.readouterr().out
    assert str(first.execution_id) in listed and "worker_lost" in listed
    call_command("dlq", "requeue", str(first.execution_id), "--user", tenant_admin.username)
    assert Execution.objects.get(execution_id=first.execution_id).status == ExecutionStatus.QUEUED
    assert QueueItem.objects.get(execution_id=first.execution_id).status == QueueStatus.PENDING
    call_command("dlq", "archive", str(second.dlq_id), "--user", tenant_admin.username)
    assert DeadLetter.objects.get(pk=second.pk).archived
    with pytest.raises(CommandError, match="already requeued or archived"):
        call_command("dlq", "requeue", str(second.dlq_id), "--user", tenant_admin.username)
    with pytest.raises(CommandError, match="needs at least one id and --user"):
        call_command("dlq", "requeue")


def test_cancel_command_cancels_a_queued_execution(tenant, operator, capsys) -> None:  # type: ignore[no-untyped-def]
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    enqueue(execution)
    call_command("cancel", str(execution.execution_id), "--user", operator.username)
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.CANCELLED
    with pytest.raises(CommandError, match="not an execution id"):
        call_command("cancel", "not-a-uuid")


def test_reap_command_returns_an_expired_lease(tenant, operator, capsys) -> None:  # type: ignore[no-untyped-def]
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    enqueue(execution)
    QueueItem.objects.filter(execution=execution).update(
        status=QueueStatus.PROCESSING,
        lease_expires_at=timezone.now() - timezone.timedelta(seconds=5),
        attempt_count=1,
    )
    call_command("reap")
    assert "returned 1" in capsys.readouterr().out
    assert QueueItem.objects.get(execution=execution).status == QueueStatus.PENDING


def test_the_dead_letter_admin_offers_the_confirmed_requeue_action(client, tenant, operator) -> None:  # type: ignore[no-untyped-def]
    entry = _dead_letter(tenant, operator)
    boss = UserFactory(username="root-boss", is_staff=True)
    MembershipFactory(tenant=tenant, user=boss, role=Role.ADMIN)  # the policy's REQUEUE: tenant admins
    client.force_login(boss)
    url = "/admin/execution/deadletter/"
    data = {"action": "requeue_dead_letters", helpers.ACTION_CHECKBOX_NAME: [entry.pk]}
    confirm_page = client.post(url, data)
    assert confirm_page.status_code == 200 and b"confirm" in confirm_page.content.lower()
    assert not DeadLetter.objects.get(pk=entry.pk).requeued
    client.post(url, {**data, "confirm": "yes"})
    assert DeadLetter.objects.get(pk=entry.pk).requeued
    assert Execution.objects.get(execution_id=entry.execution_id).status == ExecutionStatus.QUEUED
