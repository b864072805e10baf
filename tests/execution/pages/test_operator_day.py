"""An operator's day in one test, in Debian's chromium against daphne and a real worker cluster.

Log in -> home shows a pending approval -> approve as approver1 and approver2 -> watch the run
live -> find it by search and filter after it failed -> read attempt 2's stderr -> requeue as
tenant admin -> Run again -> download the output -> see all of it in /audit/. A reload of the
finished execution shows the same events the live page showed. Screenshots at 1280 and 390 px,
light and dark, are written to OPS_SCREENSHOTS_DIR (the README's come from here) or tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from execution.enums import ConnectionType, ExecutionStatus, QueueStatus, Role
from execution.models import Execution, ExecutionEvent, QueueItem
from execution.services.submit import execution_submit
from tests.execution.realtime.live import daphne_server, delivery_env
from tests.factories import AssetFactory, MembershipFactory, TenantFactory, UserFactory
from tests.support.processes import manage_argv, stop_process

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests"  # UserFactory's
PLAN = {
    "name": "rotate logs on local-1",
    "environment": "staging",
    "estimated_duration_seconds": 5,
    "steps": [
        {
            "name": "rotate",
            "type": "command",
            "target": {"hostname": "local-1"},
            "params": {"command": "echo rotating; echo 'boom: disk full' >&2; exit 3"},
            "max_retries": 2,  # three runs; a failed step is no dead letter (docs/contract.md#truth)
        }
    ],
}


@contextmanager
def workers(env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(manage_argv("qcluster"), env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield
        finally:
            stop_process(proc)


def wait_db(predicate: Any, what: str, deadline_s: float = 240) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def settled(execution: Execution) -> bool:
    """Ended failed and its queue item closed: no more events of this run are coming."""
    status = Execution.objects.get(pk=execution.pk).status
    item = QueueItem.objects.filter(execution=execution).first()
    return status == ExecutionStatus.FAILED and item is not None and item.status == QueueStatus.FAILED


def log_in(browser: Any, base: str, user: Any, **context: Any) -> Any:
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, **context)
    page = ctx.new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")  # everyone lands on the home page
    return page


def approve_from_home(page: Any, base: str, execution: Execution, comment: str) -> None:
    page.goto(f"{base}/")
    row = page.locator("#home-approvals tr", has_text=PLAN["name"])
    row.locator("a:has-text('Review')").click()
    page.fill("#id_comment", comment)
    page.once("dialog", lambda dialog: dialog.accept())  # "Approve ...?"
    page.click("button[value=approve]")
    page.wait_for_selector(".messages li.success")


def event_texts(page: Any) -> list[str]:
    return page.locator("#event-log li").all_inner_texts()  # type: ignore[no-any-return]


def screenshots(browser: Any, base: str, user: Any, execution: Execution, out: Path) -> list[Path]:
    taken = []
    for scheme in ("light", "dark"):
        for width, height in ((1280, 800), (390, 844)):
            page = log_in(browser, base, user, color_scheme=scheme)
            page.set_viewport_size({"width": width, "height": height})
            for name, url in (
                ("home", "/"),
                ("executions", "/executions/?status=failed"),
                ("execution", f"/executions/{execution.execution_id}/"),
                ("monitoring", "/monitoring/"),
            ):
                page.goto(base + url)
                if name == "execution":
                    page.wait_for_selector('#live-status[data-state="online"]')
                path = out / f"{name}-{width}-{scheme}.png"
                page.screenshot(path=str(path))
                # Nothing may stick out sideways at a phone's width.
                assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
                taken.append(path)
            page.context.close()
    return taken


def test_an_operators_day(browser: Any, tmp_path: Path) -> None:
    tenant = TenantFactory(slug="acme")
    people = {}
    for name, role in (
        ("olga-operator", Role.OPERATOR),
        ("approver1", Role.APPROVER),
        ("approver2", Role.APPROVER),
        ("ann-admin", Role.ADMIN),
    ):
        people[name] = UserFactory(username=name)
        MembershipFactory(tenant=tenant, user=people[name], role=role)
    AssetFactory(tenant=tenant, hostname="local-1", connection_type=ConnectionType.LOCAL)
    execution = execution_submit(
        tenant=tenant, actor=people["olga-operator"], plan=PLAN, approval_level=2, tags=["logs"]
    ).execution
    assert execution.status == ExecutionStatus.PENDING_APPROVAL

    env = delivery_env("bridge")
    env["OPS_RETRY_BACKOFF_BASE_SECONDS"] = "0.2"
    env["OPS_TESTING"] = "true"  # the same (fast) password hasher as this process's users
    with daphne_server(env, tmp_path / "daphne.log") as port, workers(env, tmp_path / "qcluster.log"):
        base = f"http://127.0.0.1:{port}"
        # approver1 logs in: the home page shows the pending approval; approves it.
        first = log_in(browser, base, people["approver1"])
        assert first.locator("#home-approvals tr", has_text=PLAN["name"]).is_visible()
        approve_from_home(first, base, execution, "logs are full")
        # approver1 watches the execution live while approver2 casts the deciding vote.
        first.goto(f"{base}/executions/{execution.execution_id}/")
        first.wait_for_selector('#live-status[data-state="online"]')
        first.evaluate("window.__notReloaded = true")
        second = log_in(browser, base, people["approver2"])
        approve_from_home(second, base, execution, "go ahead")

        first.locator("#execution-status").filter(has_text="failed").wait_for(timeout=240_000)
        wait_db(lambda: settled(execution), "the run to settle")
        last_id = (
            ExecutionEvent.objects.filter(execution=execution).order_by("-id").values_list("id", flat=True)[0]
        )
        first.wait_for_selector(f'#event-log li[data-event-id="{last_id}"]', timeout=60_000)
        assert first.evaluate("window.__notReloaded") is True
        live = event_texts(first)
        assert any(" started " in line for line in live) and any("approval_vote" in line for line in live)
        assert first.get_attribute("#progress-bar", "data-outcome") == "failed"
        assert "failed · 0/1 steps completed · 1 failed" in first.inner_text("#progress-text")
        assert first.get_attribute('[data-role="step-status"]', "data-status") == "failed"
        votes = first.inner_text("#votes")
        assert "approver1" in votes and "logs are full" in votes and "approver2" in votes

        # A reload shows the same events as the page that watched live.
        first.reload()
        first.wait_for_selector('#live-status[data-state="online"]')
        assert event_texts(first) == live

        # Find it by search and filter; the filter stays in the URL.
        first.goto(f"{base}/executions/")
        first.fill("input[name=q]", "rotate logs")
        first.select_option("select[name=status]", "failed")
        first.click("#filters button[type=submit]")
        first.wait_for_url("**/executions/?*status=failed*")
        assert "q=rotate+logs" in first.url
        first.locator(f'tr[data-execution-id="{execution.execution_id}"] a').first.click()
        attempt2 = first.locator('tr[data-output-for="0"] [data-attempt="2"]')
        assert attempt2.get_attribute("open") is None  # folded: only the newest attempt is open
        assert (
            "(" in attempt2.locator("summary").inner_text()
            and "retried" in attempt2.locator("summary").inner_text()
        )
        attempt2.locator("summary").click()
        stderr = attempt2.locator('pre[data-stream="stderr"]')
        assert stderr.is_visible()
        assert "boom: disk full" in stderr.inner_text()
        stdout = first.locator('tr[data-output-for="0"] [data-attempt="2"] pre[data-stream="stdout"]')
        assert "rotating" in stdout.inner_text() and "boom" not in stdout.inner_text()
        assert first.locator("[data-attempt]").count() >= 3  # one box per attempt

        # No dead letter (the step failed: a result, not a fault); the tenant admin runs the
        # plan again.
        admin = log_in(browser, base, people["ann-admin"])
        assert admin.inner_text("#card-dlq .n") == "0"
        # approver2 keeps a filtered list open: the new execution appears there live, complete.
        second.goto(f"{base}/executions/?environment=staging")
        second.wait_for_selector('#live-status[data-state="online"]')
        admin.goto(f"{base}/executions/{execution.execution_id}/")
        admin.once("dialog", lambda dialog: dialog.accept())
        admin.click("#run-again-button")
        admin.wait_for_selector("#parent-link")
        again = Execution.objects.get(parent_execution_id=execution.execution_id)
        assert again.actor == people["ann-admin"] and again.pk != execution.pk
        assert admin.url.endswith(f"/executions/{again.execution_id}/")
        live_row = second.locator(f'tr[data-execution-id="{again.execution_id}"]')
        live_row.wait_for(timeout=30_000)
        assert live_row.locator('[data-role="environment"]').inner_text() == "staging"
        assert live_row.locator('[data-role="requester"]').inner_text() == "ann-admin"

        # Download the output of the first execution.
        admin.goto(f"{base}/executions/{execution.execution_id}/")
        with admin.expect_download() as download:
            admin.click("#download-output")
        text = Path(download.value.path()).read_text()
        assert "== step 0 rotate · attempt 2" in text and "stderr boom: disk full" in text

        # All of it in /audit/.
        admin.goto(f"{base}/audit/")
        rows = admin.locator("#audit tbody tr").all_inner_texts()
        joined = "\n".join(rows)
        for who, kind in (
            ("olga-operator", "submission"),
            ("approver1", "vote"),
            ("approver2", "vote"),
            ("ann-admin", "submission"),
        ):
            assert any(who in row and kind in row for row in rows), (who, kind, joined)
        admin.goto(f"{base}/audit/?actor=approver2")
        assert admin.locator("#audit tbody tr").all_inner_texts()[0].count("go ahead") == 1

        out = Path(os.environ.get("OPS_SCREENSHOTS_DIR") or tmp_path)
        out.mkdir(parents=True, exist_ok=True)
        taken = screenshots(browser, base, people["ann-admin"], execution, out)
        assert all(p.stat().st_size > 1000 for p in taken)
