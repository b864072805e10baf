"""The fleet grid of the execution page, live (docs/fleet.md "The execution page").

Debian's chromium against daphne (LISTEN/NOTIFY bridge) and a real worker cluster running a
fleet step on 200 ``local`` assets: each target takes a ticket from a shared file and every
8th ticket fails with exit 3, so 25 targets fail (which ones is up to the pool's timing: the
test reads them from the table). The page is opened before the worker starts and never
reloaded; then the failed filter, a click on a cell, and the page at 390 px in light and dark.
A second test: a target waiting for a lock another execution holds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from execution.enums import ExecutionStatus, Role, TargetStatus
from execution.models import Execution, ExecutionEvent, StepTarget
from execution.services.cancel import execution_cancel
from execution.services.submit import execution_submit
from tests.approvals.conftest import member
from tests.execution.engine.helpers import enqueue, make_execution, wait_until, worker_cluster
from tests.execution.engine.test_fleet_locks import NO_BACKSTOP, fleet_execution
from tests.execution.pages.test_browser_settles import open_live
from tests.execution.realtime.live import daphne_server, delivery_env
from tests.factories import AssetFactory, LocalAssetFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TARGETS, EVERY = 200, 8
WIDTH = 390


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with daphne_server(delivery_env("bridge"), tmp_path / "daphne.log") as port:
        yield f"http://127.0.0.1:{port}"


def _ticket_command(shared: Path) -> str:
    return (
        f"exec 9>>{shared}/lock; flock 9; n=$(( $(cat {shared}/n 2>/dev/null || echo 0) + 1 )); "
        f"echo $n > {shared}/n; flock -u 9; sleep 1; "
        f'if [ $((n % {EVERY})) -eq 0 ]; then echo "ticket $n: broken" >&2; exit 3; fi; echo "ticket $n: ok"'
    )


def _statuses(execution: Execution) -> dict[int, str]:
    rows = StepTarget.objects.filter(execution_id=execution.execution_id).values_list(
        "target_index", "status"
    )
    return dict(rows)


def _grid(page: Any) -> dict[int, str]:
    """index -> status of every cell as the page shows it."""
    pairs = page.eval_on_selector_all(
        "#fleet-0 .cell", "cells => cells.map(c => [Number(c.dataset.index), c.dataset.status])"
    )
    return {int(i): str(s) for i, s in pairs}


def _count(page: Any, status: str) -> int:
    return int(page.inner_text(f'#fleet-0 [data-count="{status}"]'))


def test_the_grid_follows_200_targets_live_filters_the_failed_and_shows_a_targets_output(
    server: str, page: Any, browser: Any, tenant: Any, shared_dir: Path, tmp_path: Path
) -> None:
    operator = member(tenant, "olga-operator", Role.OPERATOR)
    for i in range(TARGETS):
        LocalAssetFactory(tenant=tenant, hostname=f"node-{i:03d}", tags=["grid"])
    step = {
        "name": "take a ticket",
        "type": "command",
        "targets": {"tags": ["grid"]},
        "params": {"command": _ticket_command(shared_dir)},
        "strategy": {"concurrency": 20, "max_failures": "100%"},
        "max_retries": 0,
    }
    plan = {"name": "fleet grid", "environment": "dev", "steps": [step]}
    execution = execution_submit(tenant="acme", actor=operator, plan=plan).execution
    open_live(page, server, operator, f"/executions/{execution.execution_id}/")
    assert _grid(page) == dict.fromkeys(range(TARGETS), "pending")
    assert _count(page, "all") == TARGETS and _count(page, "pending") == TARGETS
    # Every cell is kept (updated in place, never rebuilt), and each repaint is one batch of
    # attribute changes: the batches' times, to see that they come at most once a second.
    page.evaluate(
        """() => {
          document.querySelectorAll('#fleet-0 .cell').forEach(c => { c.__original = true; });
          window.__paints = [];
          new MutationObserver(() => window.__paints.push(performance.now()))
            .observe(document.querySelector('#fleet-0 [data-role="grid"]'),
                     {subtree: true, attributes: true, attributeFilter: ['data-status']});
        }"""
    )

    with worker_cluster(workers=1, log=(tmp_path / "q.log").open("wb")):
        # While the step runs: running cells, then completed and failed ones beside pending ones.
        page.wait_for_function(
            "document.querySelectorAll('#fleet-0 .cell[data-status=\"running\"]').length > 0", timeout=120_000
        )
        page.wait_for_function(
            """() => ['completed', 'failed', 'pending'].every(
                 s => document.querySelectorAll('#fleet-0 .cell[data-status="' + s + '"]').length > 0)""",
            timeout=120_000,
        )
        assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.RUNNING
        assert _count(page, "completed") > 0 and _count(page, "failed") > 0
        page.locator("#execution-status", has_text="completed").wait_for(timeout=180_000)

    stored = _statuses(execution)
    failed = sorted(i for i, s in stored.items() if s == TargetStatus.FAILED)
    assert len(failed) == TARGETS // EVERY
    assert set(stored.values()) == {TargetStatus.COMPLETED, TargetStatus.FAILED}
    # Settled on the end: the page shows what the table holds, cell for cell.
    page.wait_for_function(
        f"document.querySelector('#fleet-0 [data-count=\"completed\"]').textContent === '{TARGETS - len(failed)}'",
        timeout=30_000,
    )
    assert _grid(page) == stored
    assert _count(page, "failed") == len(failed) and _count(page, "running") == 0
    # no button for a status no target has
    assert not page.locator('#fleet-0 button[data-filter="running"]').is_visible()
    assert page.evaluate("[...document.querySelectorAll('#fleet-0 .cell')].every(c => c.__original)")
    paints = page.evaluate("window.__paints")
    assert len(paints) >= 2
    assert min(b - a for a, b in itertools.pairwise(paints)) >= 900, paints
    # Failed first: the cells in the order drawn (CSS order) begin with the failed ones.
    drawn = page.eval_on_selector_all(
        "#fleet-0 .cell",
        """cells => cells.map(c => [Number(getComputedStyle(c).order), Number(c.dataset.index)])
                        .sort((a, b) => a[0] - b[0]).map(p => p[1])""",
    )
    assert drawn[: len(failed)] == failed

    # The failed filter shows exactly the failed targets, by hostname.
    page.click('#fleet-0 button[data-filter="failed"]')
    shown = page.eval_on_selector_all(
        "#fleet-0 .cell", "cells => cells.filter(c => c.checkVisibility()).map(c => Number(c.dataset.index))"
    )
    assert sorted(shown) == failed
    labels = page.eval_on_selector_all(
        "#fleet-0 .cell",
        "cells => cells.filter(c => c.checkVisibility()).map(c => getComputedStyle(c, '::after').content)",
    )
    assert sorted(labels) == sorted(f'"node-{i:03d}"' for i in failed)

    # A click shows that target's record: its (masked) output and exit code.
    target = StepTarget.objects.get(execution_id=execution.execution_id, target_index=failed[0])
    page.click(f'#fleet-0 .cell[data-index="{failed[0]}"]')
    panel = page.locator('#fleet-0 [data-role="target"]')
    panel.locator('[data-role="facts"]', has_text="exit 3").wait_for(timeout=10_000)
    assert panel.locator('[data-role="host"]').inner_text() == f"node-{failed[0]:03d}"
    assert panel.locator('[data-role="status"]').inner_text() == "failed"
    assert "broken" in target.output
    assert panel.locator('[data-role="output"]').inner_text().strip() == target.output.strip()
    page.click('#fleet-0 button[data-filter="all"]')
    assert (
        len(page.eval_on_selector_all("#fleet-0 .cell", "cs => cs.filter(c => c.checkVisibility())"))
        == TARGETS
    )

    # A phone's width, light and dark: nothing sticks out sideways, filtered or not.
    cookies = page.context.cookies()
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": WIDTH, "height": 844}, color_scheme=scheme)
        context.add_cookies(cookies)
        phone = context.new_page()
        try:
            phone.goto(f"{server}/executions/{execution.execution_id}/")
            assert phone.evaluate("document.documentElement.scrollWidth") <= WIDTH, scheme
            cell = phone.locator('#fleet-0 .cell[data-index="0"]').bounding_box()
            assert cell is not None and cell["width"] <= 20, cell
            phone.click('#fleet-0 button[data-filter="failed"]')
            phone.click(f'#fleet-0 .cell[data-index="{failed[0]}"]')
            phone.locator('#fleet-0 [data-role="facts"]', has_text="exit 3").wait_for(timeout=10_000)
            assert phone.evaluate("document.documentElement.scrollWidth") <= WIDTH, scheme
        finally:
            context.close()


def test_a_target_waiting_for_a_busy_lock_shows_its_holder_and_starts_on_the_release(
    server: str, page: Any, tenant: Any, tmp_path: Path
) -> None:
    """``step`` lock scope (docs/fleet.md "Locks"): another execution holds the third target's
    asset, so that target is put aside (``waiting``, a ``target_waiting`` event) while the
    others complete; its panel names the holder and follows it to completed after the release."""
    operator = member(tenant, "olga-operator", Role.OPERATOR)
    assets = [AssetFactory(tenant=tenant, hostname=f"db-{i}") for i in range(5)]
    holder = make_execution(
        tenant=tenant,
        actor=operator,
        sla_class="long",
        steps=[{"type": "sleep", "params": {"seconds": 600}, "target": {"asset_id": assets[2].pk}}],
    )
    fleet = fleet_execution(tenant=tenant, actor=operator, assets=assets, seconds=0.3, concurrency=5)
    open_live(page, server, operator, f"/executions/{fleet.execution_id}/")
    with worker_cluster(workers=2, log=(tmp_path / "q.log").open("wb"), **NO_BACKSTOP):
        enqueue(holder)
        wait_until(
            lambda: ExecutionEvent.objects.filter(execution=holder, event_type="lock_acquired").exists(),
            60,
            what="the holder to take the lock",
        )
        enqueue(fleet)
        page.locator('#fleet-0 .cell[data-index="2"][data-status="waiting"]').wait_for(timeout=60_000)
        page.wait_for_function(
            "document.querySelector('#fleet-0 [data-count=\"completed\"]').textContent === '4'",
            timeout=60_000,
        )
        assert _count(page, "waiting") == 1
        assert page.locator('#fleet-0 button[data-filter="waiting"]').is_visible()
        page.click('#fleet-0 .cell[data-index="2"]')
        note = page.locator('#fleet-0 [data-role="error"]')
        note.wait_for(timeout=10_000)
        assert str(holder.execution_id) in note.inner_text()
        assert note.get_attribute("class") == "note-box"
        # Waiting is drawn after running and before the rest: first here (nothing failed or runs).
        first = page.eval_on_selector_all(
            "#fleet-0 .cell",
            "cs => cs.map(c => [Number(getComputedStyle(c).order), Number(c.dataset.index)]).sort((a, b) => a[0] - b[0])[0][1]",
        )
        assert first == 2
        execution_cancel(execution=Execution.objects.get(pk=holder.pk), actor=operator)
        page.locator("#execution-status", has_text="completed").wait_for(timeout=60_000)
        # The open panel follows its target to the end.
        page.locator('#fleet-0 [data-role="target"] [data-role="status"]', has_text="completed").wait_for(
            timeout=30_000
        )
    assert _grid(page) == _statuses(fleet) == dict.fromkeys(range(5), "completed")
    assert not page.locator('#fleet-0 [data-role="error"]').is_visible()
