"""Playwright + chromium against a live daphne: the execution page updates without a reload.

Events come from a separate producer process (tests/execution/realtime/producer.py, a
stand-in for a worker) through the LISTEN/NOTIFY bridge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.execution.realtime.live import daphne_server, delivery_env, start_producer, wait_exit

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _width(page: Any) -> float:
    return float(page.eval_on_selector("#progress-fill", "el => parseFloat(el.style.width)"))


def test_execution_page_follows_steps_live(watch_setup: dict[str, Any], page: Any, tmp_path: Path) -> None:
    execution = watch_setup["execution"]
    client = Client()
    client.force_login(watch_setup["viewer"])
    session = client.cookies["sessionid"].value
    env = delivery_env("bridge")
    start = tmp_path / "start"
    with daphne_server(env, tmp_path / "daphne.log") as port:
        base = f"http://127.0.0.1:{port}"
        page.context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
        page.goto(f"{base}/executions/{execution.execution_id}/")
        page.wait_for_selector('#live-status[data-state="online"]', timeout=30000)
        page.evaluate("window.__notReloaded = true")
        assert _width(page) == 0
        producer = start_producer(
            env, execution.pk, step_seconds=1.0, start_file=start, log=tmp_path / "producer.log"
        )
        try:
            start.touch()
            first_status = page.locator('tr[data-step-index="0"] [data-role="step-status"]')
            first_status.filter(has_text="completed").wait_for(timeout=60000)
            page.wait_for_function(
                "parseFloat(document.getElementById('progress-fill').style.width) > 0", timeout=30000
            )
            middle = _width(page)
            page.locator("#execution-status").filter(has_text="completed").wait_for(timeout=60000)
            assert wait_exit(producer) == 0, (tmp_path / "producer.log").read_text()
        finally:
            producer.kill()
        page.wait_for_function(
            "document.getElementById('progress-fill').style.width === '100%'", timeout=30000
        )
        assert 0 < middle <= 100
        assert page.evaluate("window.__notReloaded") is True
        assert page.locator('[data-role="step-status"]').all_inner_texts() == ["completed"] * 3
        output = page.locator('tr[data-output-for="1"] pre[data-stream="stdout"]').inner_text()
        assert "output of restart" in output and "hunter2" not in output


def test_list_page_shows_new_and_changing_executions_live(
    watch_setup: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    from execution.services.events import event_record
    from tests.factories import ExecutionFactory

    execution = watch_setup["execution"]
    client = Client()
    client.force_login(watch_setup["viewer"])
    env = delivery_env("bridge")
    with daphne_server(env, tmp_path / "daphne.log") as port:
        base = f"http://127.0.0.1:{port}"
        page.context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}]
        )
        page.goto(f"{base}/executions/")
        page.wait_for_selector('#live-status[data-state="online"]', timeout=30000)
        page.evaluate("window.__notReloaded = true")
        row = page.locator(f'tr[data-execution-id="{execution.execution_id}"] [data-role="status"]')
        assert row.inner_text() == "pending_approval"
        producer = start_producer(env, execution.pk, step_seconds=0.2, log=tmp_path / "producer.log")
        try:
            row.filter(has_text="completed").wait_for(timeout=60000)
            assert wait_exit(producer) == 0
        finally:
            producer.kill()
        newcomer = ExecutionFactory(tenant=watch_setup["tenant"], actor=watch_setup["viewer"])
        event_record(execution=newcomer, event_type="created", to_status="pending_approval")
        page.locator(f'tr[data-execution-id="{newcomer.execution_id}"]').wait_for(timeout=30000)
        assert page.evaluate("window.__notReloaded") is True


def test_page_says_offline_and_catches_up_after_the_server_returns(
    watch_setup: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    execution = watch_setup["execution"]
    client = Client()
    client.force_login(watch_setup["viewer"])
    env = delivery_env("bridge")
    log = tmp_path / "daphne.log"
    with daphne_server(env, log) as port:
        base = f"http://127.0.0.1:{port}"
        page.context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}]
        )
        page.goto(f"{base}/executions/{execution.execution_id}/")
        page.wait_for_selector('#live-status[data-state="online"]', timeout=30000)
        page.evaluate("window.__notReloaded = true")
    # The server is gone: the page says so, while the execution runs to its end.
    page.wait_for_selector('#live-status[data-state="offline"]', timeout=30000)
    producer = start_producer(env, execution.pk, step_seconds=0.1, log=tmp_path / "producer.log")
    assert wait_exit(producer) == 0
    with daphne_server(env, log, port=port):
        page.wait_for_selector('#live-status[data-state="online"]', timeout=60000)
        page.locator("#execution-status").filter(has_text="completed").wait_for(timeout=60000)
        assert page.locator('[data-role="step-status"]').all_inner_texts() == ["completed"] * 3
        items = page.locator("#event-log li").all_inner_texts()
        assert len(items) == len(set(items)) == 10  # every non-output event once
        assert page.evaluate("window.__notReloaded") is True


def test_operator_cancels_a_running_execution_from_the_page(
    watch_setup: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    import subprocess

    from execution.enums import Role
    from execution.models import Execution, ExecutionStep
    from execution.services.queue import queue_enqueue
    from execution.services.transition import transition
    from tests.factories import ExecutionFactory, MembershipFactory, TimeoutPolicyFactory, UserFactory
    from tests.support.processes import REPO_ROOT, manage_argv, stop_process

    for action_class in ("read", "modify", "deploy"):
        TimeoutPolicyFactory(sla_class="long", action_class=action_class, step_timeout_seconds=120)
    operator = UserFactory(username="olga-operator")
    MembershipFactory(tenant=watch_setup["tenant"], user=operator, role=Role.OPERATOR)
    plan = {
        "name": "long sleep",
        "environment": "dev",
        "steps": [{"name": "nap", "type": "sleep", "params": {"seconds": 60}}],
    }
    execution = ExecutionFactory(
        tenant=watch_setup["tenant"], actor=operator, plan_snapshot=plan, sla_class="long"
    )
    ExecutionStep.objects.create(execution=execution, step_index=0, step_name="nap", step_type="sleep")
    execution = transition(execution, "approved")
    client = Client()
    client.force_login(operator)
    env = delivery_env("bridge")
    env["OPS_WORKERS"] = "1"
    with daphne_server(env, tmp_path / "daphne.log") as port:
        with (tmp_path / "qcluster.log").open("wb") as out:
            workers = subprocess.Popen(
                manage_argv("qcluster"), cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            base = f"http://127.0.0.1:{port}"
            page.context.add_cookies(
                [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}]
            )
            page.goto(f"{base}/executions/{execution.execution_id}/")
            page.wait_for_selector('#live-status[data-state="online"]', timeout=30000)
            queue_enqueue(execution=execution)
            page.locator('tr[data-step-index="0"] [data-role="step-status"]').filter(
                has_text="running"
            ).wait_for(timeout=60000)
            page.once("dialog", lambda dialog: dialog.accept())
            page.click("#cancel-button")
            page.locator("#execution-status").filter(has_text="cancelled").wait_for(timeout=60000)
            page.locator('tr[data-step-index="0"] [data-role="step-status"]').filter(
                has_text="cancelled"
            ).wait_for(timeout=30000)
            assert page.locator("#cancel-form").is_hidden()
            assert Execution.objects.get(pk=execution.pk).status == "cancelled"
        finally:
            stop_process(workers, timeout=60)
