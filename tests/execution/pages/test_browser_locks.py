"""Playwright + chromium: an execution's page says which execution holds the lock it waits
for, links to it, and drops the note live once the lock is taken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from execution.enums import LockMode
from execution.worker.locks import LockRequest, locks_give, locks_take
from execution.worker.runtime import drain
from tests.execution.engine.helpers import drain_until_done, enqueue, make_execution
from tests.execution.realtime.live import daphne_server, delivery_env
from tests.factories import AssetFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_page_names_the_holder_of_the_lock_and_follows_the_wait_live(
    tenant: Any, operator: Any, page: Any, tmp_path: Path, settings: Any
) -> None:
    settings.LOCK_SWEEP_SECONDS = 3600
    asset = AssetFactory(tenant=tenant)
    holder = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    assert (
        locks_take(
            tenant_id=tenant.pk,
            execution_id=holder.execution_id,
            owner="o",
            requests=[LockRequest(str(asset.pk), LockMode.EXCLUSIVE)],
        )
        is None
    )
    waiter = make_execution(
        tenant=tenant, actor=operator, steps=[{"type": "noop", "target": {"asset_id": asset.pk}}]
    )
    enqueue(waiter)
    drain(budget_seconds=0.5)  # it parks in the asset's line
    client = Client()
    client.force_login(operator)
    with daphne_server(delivery_env("bridge"), tmp_path / "daphne.log") as port:
        base = f"http://127.0.0.1:{port}"
        page.context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}]
        )
        page.goto(f"{base}/executions/{waiter.execution_id}/")
        page.wait_for_selector('#live-status[data-state="online"]', timeout=30000)
        note = page.locator("#lock-wait")
        assert note.is_visible()
        assert str(holder.execution_id) in note.inner_text()
        link = page.locator('#lock-wait [data-role="lock-holder-link"]')
        assert link.get_attribute("href") == f"/executions/{holder.execution_id}/"

        locks_give(execution=holder, assets=[str(asset.pk)])
        drain_until_done(waiter)
        page.locator("#execution-status").filter(has_text="completed").wait_for(timeout=30000)
        assert note.is_hidden()
        page.goto(f"{base}/executions/{waiter.execution_id}/")  # and after a reload
        assert page.locator("#lock-wait").is_hidden()
