"""Every live view settles (docs/console.md "Live, and the same after a reload").

Debian's chromium against daphne (LISTEN/NOTIFY bridge). The home page's Active list against a
real worker cluster running a step that fails; votes, expiries and cancellations are the
product's own services called from this process, their events crossing to daphne like a
worker's. No page is reloaded (``window.__notReloaded`` stays set).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from approvals.models import Approval
from approvals.services import approval_vote
from approvals.services.expire import approvals_expire
from execution.enums import Role
from execution.services.cancel import execution_cancel
from tests.approvals.conftest import make_approval, member
from tests.execution.engine.helpers import enqueue, make_execution, worker_cluster
from tests.execution.realtime.live import daphne_server, delivery_env
from tests.factories import LocalAssetFactory, TenantFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with daphne_server(delivery_env("bridge"), tmp_path / "daphne.log") as port:
        yield f"http://127.0.0.1:{port}"


def open_live(page: Any, base: str, user: Any, path: str) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}])
    page.goto(base + path)
    page.wait_for_selector('#live-status[data-state="online"]', timeout=30000)
    page.evaluate("window.__notReloaded = true")


def test_a_failed_run_leaves_active_for_the_failures_on_the_home_page(
    server: str, page: Any, tmp_path: Path
) -> None:
    tenant = TenantFactory(slug="acme")
    operator = member(tenant, "olga-operator", Role.OPERATOR)
    asset = LocalAssetFactory(tenant=tenant)
    failing = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "name": "fail",
                "type": "command",
                "target": {"asset_id": asset.pk},
                "params": {"command": "exit 1"},
            }
        ],
    )
    waiting = make_execution(tenant=tenant, actor=operator, steps=[{"name": "nap", "type": "noop"}])
    open_live(page, server, operator, "/")
    active = page.locator("#home-running")
    # approved: it is active before any worker sees it
    active.locator(f'tr[data-execution-id="{waiting.execution_id}"]').wait_for(timeout=5000)
    with worker_cluster(workers=1, OPS_RETRY_BACKOFF_BASE_SECONDS="0.2", log=(tmp_path / "q.log").open("wb")):
        enqueue(failing)
        failures = page.locator(f'#home-failures tr[data-execution-id="{failing.execution_id}"]')
        failures.wait_for(timeout=180_000)
    assert failures.locator('[data-role="status"]').inner_text() == "failed"
    assert failures.locator('[data-role="progress"]').inner_text() == "0/1 completed"
    # Gone from Active: no "failed" row there, no "100 % · 1/1".
    row = active.locator(f'tr[data-execution-id="{failing.execution_id}"]')
    row.wait_for(state="detached", timeout=30000)
    assert "100%" not in active.inner_text()
    assert page.inner_text("#card-failures .n") == "1"
    # A cancelled one leaves too, and the list says when nothing is left.
    execution_cancel(execution=waiting, actor=operator, reason="not today")
    active.locator(f'tr[data-execution-id="{waiting.execution_id}"]').wait_for(
        state="detached", timeout=30000
    )
    active.locator("tr.empty", has_text="Nothing is running.").wait_for(timeout=30000)
    page.locator("#card-running .n", has_text="0").wait_for(timeout=30000)
    assert page.evaluate("window.__notReloaded") is True


def test_the_approval_block_of_an_execution_page_follows_votes_and_the_decision(
    server: str, page: Any, tenant: Any
) -> None:
    requester = member(tenant, "rita-requester", Role.DEPLOYER)
    ada, bob = member(tenant, "ada-approver"), member(tenant, "bob-approver")
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    open_live(page, server, requester, f"/executions/{approval.execution.execution_id}/")
    assert page.inner_text("#approval-state") == "pending"
    approval_vote(approval=approval, voter=ada, decision="approve", comment="looks fine")
    page.locator("#votes", has_text="looks fine").wait_for(timeout=30000)
    assert "ada-approver" in page.inner_text("#votes") and page.inner_text("#approval-state") == "pending"
    approval_vote(
        approval=Approval.objects.get(pk=approval.pk), voter=bob, decision="reject", comment="not now"
    )
    page.locator("#approval-state", has_text="rejected").wait_for(timeout=30000)
    assert "decided by bob-approver" in page.inner_text("#approval-block")
    assert "not now" in page.inner_text("#votes")
    page.locator("#execution-status", has_text="rejected").wait_for(timeout=30000)

    # An approval that runs out of time says "expired" without a reload.
    late = make_approval(tenant=tenant, actor=requester, level=1)
    page.goto(f"{server}/executions/{late.execution.execution_id}/")
    page.wait_for_selector('#live-status[data-state="online"]', timeout=30000)
    page.evaluate("window.__notReloaded = true")
    Approval.objects.filter(pk=late.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert approvals_expire() == 1
    page.locator("#approval-state", has_text="expired").wait_for(timeout=30000)
    page.locator("#execution-status", has_text="rejected").wait_for(timeout=30000)
    assert page.evaluate("window.__notReloaded") is True


def test_the_approvals_page_follows_new_requests_and_decisions(server: str, page: Any, tenant: Any) -> None:
    requester = member(tenant, "rita-requester", Role.DEPLOYER)
    ada, bob = member(tenant, "ada-approver"), member(tenant, "bob-approver")
    first = make_approval(tenant=tenant, actor=requester, level=1)
    open_live(page, server, ada, "/approvals/")

    def row(approval: Any) -> Any:
        return page.locator(f'tr[data-approval="{approval.approval_id}"]')

    assert row(first).is_visible()
    second = make_approval(tenant=tenant, actor=requester, level=1)
    row(second).wait_for(timeout=30000)  # a new request appears
    approval_vote(approval=first, voter=bob, decision="approve")
    row(first).wait_for(state="detached", timeout=30000)  # decided: it leaves
    third = make_approval(tenant=tenant, actor=requester, level=2)
    row(third).wait_for(timeout=30000)
    execution_cancel(execution=third.execution, actor=requester, reason="changed my mind")
    row(third).wait_for(state="detached", timeout=30000)  # cancelled: it leaves
    Approval.objects.filter(pk=second.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert approvals_expire() == 1
    row(second).wait_for(state="detached", timeout=30000)  # expired: it leaves
    page.locator("#approvals-root", has_text="Nothing is waiting for approval.").wait_for(timeout=30000)
    assert page.evaluate("window.__notReloaded") is True
