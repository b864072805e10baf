"""Idempotency of docs/contract.md#submission: window, supersede on failure, released keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from execution.enums import ExecutionStatus
from execution.errors import KeyReused
from execution.models import Execution
from execution.services.submit import execution_submit
from execution.services.transition import transition
from tests.execution.api.conftest import noop_body

pytestmark = pytest.mark.django_db


def _submit(operator: Any, **kwargs: Any) -> Any:
    body = noop_body(level=1)
    return execution_submit(
        tenant=body["tenant"], actor=operator, plan=body["plan"], approval_level=1, **kwargs
    )


def test_repeat_of_pending_execution_is_a_replay(operator: Any) -> None:
    first = _submit(operator)
    second = _submit(operator)
    assert second.replayed and second.execution.pk == first.execution.pk


@pytest.mark.parametrize("ended", ["rejected", "cancelled"])
def test_repeat_after_a_superseded_end_creates_a_new_execution_and_releases_the_key(
    operator: Any, ended: str
) -> None:
    first = _submit(operator).execution
    transition(first, ended)
    second = _submit(operator)
    assert not second.replayed and second.execution.pk != first.pk
    first.refresh_from_db()
    assert first.idempotency_key is None
    assert first.released_idempotency_key == second.execution.idempotency_key


def test_repeat_after_failure_creates_a_new_execution(operator: Any) -> None:
    first = _submit(operator).execution
    for status in ("approved", "queued", "running", "failed"):
        transition(first, status)
    assert not _submit(operator).replayed


def test_repeat_after_the_window_creates_a_new_execution(operator: Any, settings: Any) -> None:
    settings.IDEMPOTENCY_WINDOW_SECONDS = 60
    first = _submit(operator).execution
    Execution.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    second = _submit(operator)
    assert not second.replayed
    assert Execution.objects.get(pk=first.pk).status == ExecutionStatus.PENDING_APPROVAL


def test_header_replaces_the_plan_part_of_the_key(operator: Any) -> None:
    first = _submit(operator, idempotency_header="change-1")
    again = _submit(operator, idempotency_header="change-1")
    assert again.replayed and again.execution.pk == first.execution.pk
    assert not _submit(operator, idempotency_header="change-2").replayed


def test_a_header_reused_for_another_plan_is_refused_naming_the_holder(operator: Any) -> None:
    first = _submit(operator, idempotency_header="change-1").execution
    body = noop_body(level=1, name="a different plan")
    with pytest.raises(KeyReused) as refused:
        execution_submit(
            tenant="acme", actor=operator, plan=body["plan"], approval_level=1, idempotency_header="change-1"
        )
    assert refused.value.execution_id == first.execution_id
    assert str(first.execution_id) in str(refused.value)
    assert Execution.objects.count() == 1


def test_a_header_of_a_superseded_execution_takes_another_plan(operator: Any) -> None:
    first = _submit(operator, idempotency_header="change-1").execution
    transition(first, "rejected")
    body = noop_body(level=1, name="a different plan")
    again = execution_submit(
        tenant="acme", actor=operator, plan=body["plan"], approval_level=1, idempotency_header="change-1"
    )
    assert not again.replayed and again.execution.pk != first.pk


def test_key_differs_per_actor(operator: Any, deployer: Any) -> None:
    assert _submit(operator).execution.pk != _submit(deployer).execution.pk
