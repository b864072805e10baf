"""Gates on the pages, end to end (docs/approvals.md#gates): Debian's chromium against daphne
(LISTEN/NOTIFY bridge) and a real worker cluster running a plan with two gates.

Two approvers each decide one gate on the approval page; a third browser keeps ``/approvals/``
open without reloading and sees each gate's row appear when the worker opens the gate and
leave when it is decided."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from approvals.models import GateApproval
from execution.enums import ExecutionStatus, Role
from execution.models import Execution
from tests.approvals.conftest import member
from tests.execution.engine.helpers import enqueue, make_execution, wait_until, worker_cluster
from tests.execution.pages.test_browser_settles import open_live
from tests.execution.realtime.live import daphne_server, delivery_env

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = ExecutionStatus


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with daphne_server(delivery_env("bridge"), tmp_path / "daphne.log") as port:
        yield f"http://127.0.0.1:{port}"


def _gate(name: str, message: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "approval",
        "params": {"level": 1, "message": message},
        "action_class": "read",
    }


def _approve_on_the_page(page: Any, base: str, row: Any, comment: str) -> str:
    """Open a row's approval page from the live list, approve it (confirmed); its path."""
    href = row.locator("a.button").get_attribute("href")
    page.goto(base + href)
    assert page.locator("#gate").is_visible()
    page.fill("#id_comment", comment)
    page.once("dialog", lambda dialog: dialog.accept())  # "Approve ...?"
    page.click("button[value=approve]")
    page.wait_for_selector(".messages li.success")
    assert page.inner_text("#approval-state") == "approved"
    return str(href)


def test_two_gates_decided_by_two_approvers_on_the_pages_while_the_list_follows_live(
    server: str, page: Any, browser: Any, tenant: Any, tmp_path: Path
) -> None:
    requester = member(tenant, "rita-requester", Role.DEPLOYER)
    ada, bob, vic = (
        member(tenant, "ada-approver"),
        member(tenant, "bob-approver"),
        member(tenant, "vic-approver"),
    )
    execution = make_execution(
        tenant=tenant,
        actor=requester,
        steps=[
            {"name": "canary", "type": "noop"},
            _gate("canary healthy?", "look at the canary"),
            {"name": "half", "type": "noop"},
            _gate("half healthy?", "look at the first half"),
            {"name": "rest", "type": "noop"},
        ],
    )
    contexts = [browser.new_context(viewport={"width": 1366, "height": 800}) for _ in range(2)]
    ada_page, bob_page = (context.new_page() for context in contexts)
    try:
        open_live(page, server, vic, "/approvals/")  # the watcher: never reloaded
        open_live(ada_page, server, ada, "/approvals/")
        open_live(bob_page, server, bob, "/approvals/")
        rows = page.locator(f'#approvals-root tr[data-execution="{execution.execution_id}"]')
        assert rows.count() == 0
        with worker_cluster(workers=1, log=(tmp_path / "qcluster.log").open("wb")):
            enqueue(execution)
            # Gate 1 opens: its row appears on every open list, marked as a gate.
            rows.filter(has_text="gate at step 1").wait_for(timeout=120_000)
            ada_row = ada_page.locator(
                f'tr[data-execution="{execution.execution_id}"]', has_text="gate at step 1"
            )
            ada_row.wait_for(timeout=30_000)
            first = _approve_on_the_page(ada_page, server, ada_row, "canary is fine")
            # Decided: the row leaves; the worker resumes and gate 2 opens: its row appears.
            rows.filter(has_text="gate at step 3").wait_for(timeout=120_000)
            assert rows.count() == 1
            bob_row = bob_page.locator(
                f'tr[data-execution="{execution.execution_id}"]', has_text="gate at step 3"
            )
            bob_row.wait_for(timeout=30_000)
            second = _approve_on_the_page(bob_page, server, bob_row, "half is fine")
            rows.first.wait_for(state="detached", timeout=30_000)
            wait_until(
                lambda: Execution.objects.get(pk=execution.pk).status == S.COMPLETED,
                120,
                interval=0.5,
                what="the execution completed after both gates",
            )
        assert page.evaluate("window.__notReloaded") is True
        page.locator("#approvals-root", has_text="Nothing is waiting for approval.").wait_for(timeout=30_000)
        # The pages confirm both decisions: each gate by its approver, the execution completed.
        gates = {g.step_index: g for g in GateApproval.objects.filter(execution=execution)}
        assert (gates[1].state, gates[1].approver, gates[3].state, gates[3].approver) == (
            "approved",
            ada,
            "approved",
            bob,
        )
        assert (
            first == f"/approvals/{gates[1].approval_id}/" and second == f"/approvals/{gates[3].approval_id}/"
        )
        for path, voter, comment in (
            (first, "ada-approver", "canary is fine"),
            (second, "bob-approver", "half is fine"),
        ):
            page.goto(server + path)
            assert page.inner_text("#approval-state") == "approved"
            assert f"by {voter}" in page.inner_text("dl.facts")
            assert voter in page.inner_text("#votes") and comment in page.inner_text("#votes")
            assert page.inner_text("#execution-status") == "completed"
        page.goto(f"{server}/executions/{execution.execution_id}/")
        assert page.inner_text("#execution-status") == "completed"
    finally:
        for context in contexts:
            context.close()
