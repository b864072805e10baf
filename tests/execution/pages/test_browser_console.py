"""Console details only a browser shows: the ETA counts down, the dead-letter table is
readable at a phone's width (no header broken mid-word, the reason why there is no button),
and the pages follow the system's dark mode."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from execution.enums import ExecutionStatus
from tests.factories import DeadLetterFactory, ExecutionFactory, ExecutionStepFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _browse(browser: Any, live_server: Any, user: Any, **context: Any) -> Any:
    client = Client()
    client.force_login(user)
    ctx = browser.new_context(**context)
    ctx.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return ctx.new_page()


def _eta_seconds(page: Any) -> int:
    text = page.inner_text("#progress-text")
    minutes, seconds = text.split("ETA ")[1].split(":")
    return int(minutes) * 60 + int(seconds)


def test_the_eta_counts_down(browser: Any, live_server: Any, tenant: Any, viewer: Any) -> None:
    plan = {"name": "slow one", "environment": "dev", "estimated_duration_seconds": 600, "steps": []}
    execution = ExecutionFactory(tenant=tenant, status=ExecutionStatus.RUNNING, plan_snapshot=plan)
    ExecutionStepFactory(
        execution=execution,
        step_index=0,
        step_type="sleep",
        status=ExecutionStatus.RUNNING,
        started_at=timezone.now(),
    )
    from execution.services.events import event_record

    event_record(execution=execution, event_type="started", to_status=ExecutionStatus.RUNNING)
    page = _browse(browser, live_server, viewer)
    page.goto(f"{live_server.url}/executions/{execution.execution_id}/")
    page.wait_for_selector("#progress-text:has-text('ETA')")
    first = _eta_seconds(page)
    assert 0 < first <= 600
    page.wait_for_function(
        f"(() => {{ const t = document.getElementById('progress-text').textContent.split('ETA ')[1];"
        f" const [m, s] = t.split(':').map(Number); return m * 60 + s < {first}; }})()",
        timeout=10_000,
    )


def test_a_countdown_that_runs_out_says_overdue_not_eta_0(
    browser: Any, live_server: Any, tenant: Any, viewer: Any
) -> None:
    plan = {"name": "quick one", "environment": "dev", "estimated_duration_seconds": 6, "steps": []}
    execution = ExecutionFactory(tenant=tenant, status=ExecutionStatus.RUNNING, plan_snapshot=plan)
    ExecutionStepFactory(
        execution=execution,
        step_index=0,
        step_type="a-type-with-no-history",
        status=ExecutionStatus.RUNNING,
        started_at=timezone.now(),
    )
    from execution.services.events import event_record

    event_record(execution=execution, event_type="started", to_status=ExecutionStatus.RUNNING)
    page = _browse(browser, live_server, viewer)
    page.goto(f"{live_server.url}/executions/{execution.execution_id}/")
    page.wait_for_selector("#progress-text:has-text('ETA')")
    # Sampled every animation frame until the estimate runs out: never "ETA 0:00".
    seen = page.evaluate(
        """() => new Promise(done => { const texts = new Set(); const t0 = performance.now();
        (function look() { const t = document.getElementById('progress-text').textContent; texts.add(t);
          if (t.includes('overdue') || performance.now() - t0 > 15000) done([...texts]);
          else requestAnimationFrame(look); })(); })"""
    )
    assert any("overdue" in t for t in seen), seen
    assert not any("ETA 0:00" in t for t in seen), seen


def test_the_event_list_numbers_each_event_once(
    browser: Any, live_server: Any, tenant: Any, viewer: Any
) -> None:
    from execution.services.events import event_record

    execution = ExecutionFactory(tenant=tenant, status=ExecutionStatus.RUNNING)
    ids = [
        event_record(execution=execution, event_type=kind, to_status=ExecutionStatus.RUNNING).pk
        for kind in ("started", "heartbeat_note")
    ]
    page = _browse(browser, live_server, viewer)
    page.goto(f"{live_server.url}/executions/{execution.execution_id}/")
    page.wait_for_selector(f'#event-log li[data-event-id="{ids[-1]}"]')
    assert page.evaluate("getComputedStyle(document.getElementById('event-log')).listStyleType") == "decimal"
    texts = page.locator("#event-log li").all_inner_texts()
    assert texts and not any(t.startswith("#") or f"#{i}" in t for t in texts for i in ids), texts


def test_a_fleet_batch_event_names_its_batch_and_hosts(
    browser: Any, live_server: Any, tenant: Any, viewer: Any
) -> None:
    # The line said only "fleet_batch_started (step 0)": which batch, and on which hosts, was
    # in opsctl --follow and the event's data, not on the page.
    from execution.services.events import event_record

    execution = ExecutionFactory(tenant=tenant, status=ExecutionStatus.RUNNING)
    hosts = [f"web-{i:02d}" for i in range(11, 23)]
    event = event_record(
        execution=execution,
        event_type="fleet_batch_started",
        step_index=0,
        details={"batch": 1, "targets": hosts},
    )
    page = _browse(browser, live_server, viewer)
    page.goto(f"{live_server.url}/executions/{execution.execution_id}/")
    line = page.locator(f'#event-log li[data-event-id="{event.pk}"]')
    line.wait_for()
    assert line.inner_text().endswith(
        "fleet_batch_started (step 0) · batch 1: 12 targets (web-11, web-12, web-13, web-14, web-15, "
        "web-16, web-17, web-18, web-19, web-20 and 2 more)"
    ), line.inner_text()


def test_the_dead_letter_table_is_readable_on_a_phone(
    browser: Any, live_server: Any, tenant: Any, operator: Any
) -> None:
    DeadLetterFactory(
        execution=ExecutionFactory(tenant=tenant, status=ExecutionStatus.FAILED), attempt_count=3
    )
    page = _browse(browser, live_server, operator, viewport={"width": 390, "height": 844})
    page.goto(f"{live_server.url}/dlq/")
    one_line = page.evaluate(
        "Array.from(document.querySelectorAll('#dlq th')).filter(th => getComputedStyle(th).display !== 'none')"
        ".every(th => { const r = document.createRange(); r.selectNodeContents(th);"
        " return r.getClientRects().length <= 1; })"
    )
    assert one_line, "a column header wraps or overflows"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert "only an admin of acme may requeue" in page.inner_text("#dlq")


def test_pages_follow_the_systems_dark_mode(browser: Any, live_server: Any, viewer: Any) -> None:
    backgrounds = {}
    for scheme in ("light", "dark"):
        page = _browse(browser, live_server, viewer, color_scheme=scheme)
        page.goto(f"{live_server.url}/executions/")
        backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
        page.context.close()
    assert backgrounds["light"] == "rgb(246, 247, 249)"
    assert backgrounds["dark"] == "rgb(18, 22, 31)"


def test_a_waiting_execution_shows_its_estimate_without_counting_it_down(
    browser: Any, live_server: Any, tenant: Any, viewer: Any
) -> None:
    # Waiting for its approvers, nothing runs: the estimate holds still ("about 0:03 once it
    # runs"), never an ETA that runs out into "overdue" before anyone voted.
    plan = {"name": "waits for votes", "environment": "dev", "estimated_duration_seconds": 3, "steps": []}
    execution = ExecutionFactory(tenant=tenant, status=ExecutionStatus.PENDING_APPROVAL, plan_snapshot=plan)
    ExecutionStepFactory(
        execution=execution,
        step_index=0,
        step_type="a-type-with-no-history",
        status=ExecutionStatus.PENDING_APPROVAL,
    )
    from execution.services.events import event_record

    event_record(execution=execution, event_type="created", to_status=ExecutionStatus.PENDING_APPROVAL)
    page = _browse(browser, live_server, viewer)
    page.goto(f"{live_server.url}/executions/{execution.execution_id}/")
    page.wait_for_selector("#progress-text:has-text('once it runs')")
    seen = page.evaluate(
        """() => new Promise(done => { const texts = new Set(); const t0 = performance.now();
        (function look() { texts.add(document.getElementById('progress-text').textContent);
          if (performance.now() - t0 > 5000) done([...texts]); else requestAnimationFrame(look); })(); })"""
    )
    assert seen == ["0% · 0/1 steps · about 0:03 once it runs"], seen


def test_each_steps_attempt_summary_tells_that_steps_own_run(
    browser: Any, live_server: Any, tenant: Any, viewer: Any
) -> None:
    # Step 0 completed in 2 s, then step 1 failed 3 s later and the execution with it: step 0's
    # output box reads its own run ("(2.0 s) · completed"), not the attempt's 5 s and "failed".
    from datetime import timedelta

    from execution.services.events import event_record

    plan = {"name": "two steps", "environment": "dev", "steps": []}
    execution = ExecutionFactory(tenant=tenant, status=ExecutionStatus.FAILED, plan_snapshot=plan)
    for index, status in ((0, ExecutionStatus.COMPLETED), (1, ExecutionStatus.FAILED)):
        ExecutionStepFactory(execution=execution, step_index=index, step_type="command", status=status)
    t0 = timezone.now() - timedelta(minutes=1)
    for second, event_type, step, to_status, details in [  # the last one ends the attempt
        (0, "started", None, ExecutionStatus.RUNNING, None),
        (0, "step_started", 0, ExecutionStatus.RUNNING, None),
        (1, "step_output", 0, None, {"stream": "stdout", "text": "fine"}),
        (2, "step_completed", 0, ExecutionStatus.COMPLETED, None),
        (2, "step_started", 1, ExecutionStatus.RUNNING, None),
        (3, "step_output", 1, None, {"stream": "stderr", "text": "oops"}),
        (5, "step_failed", 1, ExecutionStatus.FAILED, None),
        (5, "failed", None, ExecutionStatus.FAILED, None),
    ]:
        from_status = ExecutionStatus.RUNNING if event_type == "failed" else None
        # Recorded at the given second (the table is append-only: the time is set as it is written).
        with mock.patch("django.utils.timezone.now", return_value=t0 + timedelta(seconds=second)):
            event_record(
                execution=execution,
                event_type=event_type,
                step_index=step,
                from_status=from_status,
                to_status=to_status,
                details=details,
            )
    page = _browse(browser, live_server, viewer)
    page.goto(f"{live_server.url}/executions/{execution.execution_id}/")
    first = page.inner_text('tr[data-output-for="0"] [data-attempt="1"] > summary')
    second = page.inner_text('tr[data-output-for="1"] [data-attempt="1"] > summary')
    assert first.startswith("Attempt 1 · ") and first.endswith("(2.0 s) · completed"), first
    assert second.startswith("Attempt 1 · ") and second.endswith("(3.0 s) · failed"), second
