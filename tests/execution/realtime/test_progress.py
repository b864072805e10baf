"""progress_for (percent, steps, ETA from history) and the batching of step output."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone

from execution.enums import ExecutionStatus
from execution.models import ExecutionEvent
from execution.services import progress as progress_module
from execution.services.progress import (
    progress_for,
    step_output_emitter,
    step_output_flush,
    step_output_record,
)
from tests.factories import ExecutionFactory, ExecutionStepFactory


@pytest.fixture(autouse=True)
def _fresh_history() -> None:
    progress_module._history.clear()


@pytest.mark.django_db
def test_progress_counts_steps_and_uses_history_by_name_then_type() -> None:
    past = ExecutionFactory(status=ExecutionStatus.COMPLETED)
    ExecutionStepFactory(
        execution=past,
        step_index=0,
        step_name="restart",
        step_type="command",
        status="completed",
        duration_ms=4000,
    )
    ExecutionStepFactory(
        execution=past,
        step_index=1,
        step_name="other",
        step_type="command",
        status="completed",
        duration_ms=1000,
    )
    ExecutionStepFactory(
        execution=past,
        step_index=2,
        step_name="probe",
        step_type="http",
        status="completed",
        duration_ms=2000,
    )
    execution = ExecutionFactory(status=ExecutionStatus.RUNNING)
    ExecutionStepFactory(
        execution=execution,
        step_index=0,
        step_name="check",
        step_type="http",
        status="completed",
        duration_ms=10,
    )
    ExecutionStepFactory(
        execution=execution, step_index=1, step_name="restart", step_type="command", status="queued"
    )
    ExecutionStepFactory(
        execution=execution, step_index=2, step_name="new name", step_type="command", status="queued"
    )
    progress = progress_for(execution=execution)
    # restart: 4 s by name; "new name": the average of command steps (4 s, 1 s) = 2.5 s.
    assert progress == {"percent": 33, "steps_done": 1, "steps_total": 3, "eta_seconds": 6}


@pytest.mark.django_db
def test_progress_without_history_has_no_eta_and_running_step_counts_down() -> None:
    execution = ExecutionFactory(status=ExecutionStatus.RUNNING)
    ExecutionStepFactory(
        execution=execution,
        step_index=0,
        step_name="x",
        step_type="sleep",
        status="running",
        started_at=timezone.now(),
    )
    assert progress_for(execution=execution)["eta_seconds"] is None
    past = ExecutionFactory(status=ExecutionStatus.COMPLETED)
    ExecutionStepFactory(
        execution=past, step_index=0, step_name="x", step_type="sleep", status="completed", duration_ms=10_000
    )
    progress_module._history.clear()
    execution.steps.update(started_at=timezone.now() - timezone.timedelta(seconds=4))
    assert progress_for(execution=execution)["eta_seconds"] == 6


@pytest.mark.django_db
def test_a_running_step_past_its_estimate_has_no_eta_never_0() -> None:
    plan = {"name": "late", "environment": "dev", "estimated_duration_seconds": 2, "steps": []}
    execution = ExecutionFactory(status=ExecutionStatus.RUNNING, plan_snapshot=plan)
    ExecutionStepFactory(
        execution=execution,
        step_index=0,
        step_name="late step",
        step_type="a-type-with-no-history",
        status="running",
        started_at=timezone.now() - timezone.timedelta(seconds=30),
    )
    progress_module._history.clear()
    assert progress_for(execution=execution)["eta_seconds"] is None


@pytest.mark.django_db
def test_finished_execution_is_complete() -> None:
    execution = ExecutionFactory(status=ExecutionStatus.COMPLETED)
    ExecutionStepFactory(execution=execution, step_index=0, status="completed", duration_ms=5)
    assert progress_for(execution=execution) == {
        "percent": 100,
        "steps_done": 1,
        "steps_total": 1,
        "eta_seconds": 0,
    }


@pytest.mark.django_db(transaction=True)
def test_step_output_is_batched_capped_and_masked(monkeypatch: Any) -> None:
    monkeypatch.setattr(progress_module, "STEP_OUTPUT_EVENTS_PER_SECOND", 4)
    execution = ExecutionFactory(status=ExecutionStatus.RUNNING)
    started = time.monotonic()
    # 2000 lines of 60 characters: more than the step's 64 KB, so some is dropped however fast
    # or slow this machine records them (shorter lines got truncated only when more than a
    # chunk's worth came within a quarter second, which a loaded machine did not do).
    for i in range(2000):
        step_output_record(
            execution=execution,
            step_index=0,
            stream="stdout",
            text=f"line {i:04d} password=s3cr3t {'x' * 33}\n",
        )
    step_output_flush(execution=execution)
    elapsed = time.monotonic() - started
    events = list(
        ExecutionEvent.objects.filter(execution_id=execution.execution_id, event_type="step_output")
    )
    # At most one flush per 1/4 s (plus the first and the final flush), however many chunks.
    assert 1 <= len(events) <= 4 * elapsed + 2
    assert all(len(e.details["text"]) <= progress_module.STEP_OUTPUT_CHUNK_LIMIT for e in events)
    assert all("s3cr3t" not in e.details["text"] for e in events)
    assert any(e.details["truncated"] and e.details["dropped_chars"] > 0 for e in events)


@pytest.mark.django_db(transaction=True)
def test_trailing_output_is_flushed_by_the_timer() -> None:
    execution = ExecutionFactory(status=ExecutionStatus.RUNNING)
    emit = step_output_emitter(execution=execution, step_index=1)  # what a runner's ctx.emit_output is
    emit("stdout", "first\n")
    emit("stderr", "second\n")  # rate-limited: written by the timer
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        texts = list(
            ExecutionEvent.objects.filter(execution_id=execution.execution_id).values_list(
                "details__text", flat=True
            )
        )
        if len(texts) == 2:
            break
        time.sleep(0.05)
    assert texts == ["first\n", "second\n"]
