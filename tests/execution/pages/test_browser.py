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
        output = page.locator('tr[data-output-for="1"] pre').inner_text()
        assert "output of restart" in output and "hunter2" not in output
