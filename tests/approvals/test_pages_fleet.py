"""The approval page of a fleet plan lists every resolved target, their count and the batches
(docs/fleet.md): an approver sees the hosts the vote approves, not the first one only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from approvals.models import Approval
from execution.services.submit import execution_submit
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db


def test_the_approval_page_lists_the_resolved_targets_by_batch(
    approver: Any, tenant: Any, requester: Any
) -> None:
    for i in range(10):
        AssetFactory(tenant=tenant, hostname=f"web-{i}", tags=["web"])
    AssetFactory(tenant=tenant, hostname="db-1", tags=["db"])
    plan = {
        "name": "rolling restart",
        "environment": "prod",
        "steps": [
            {
                "name": "restart",
                "type": "command",
                "targets": {"tags": ["web"]},
                "params": {"command": "systemctl restart nginx"},
                "strategy": {"concurrency": 2, "batch": "40%", "max_failures": 1, "pause_seconds": 30},
            }
        ],
    }
    execution = execution_submit(tenant=tenant, actor=requester, plan=plan).execution
    approval = Approval.objects.get(execution=execution)
    client = Client()
    client.force_login(approver)
    html = client.get(f"/approvals/{approval.approval_id}/").content.decode()
    assert (
        "10 targets in 3 batches: 2 at once, batches of 4, stops after more than 1 failed, 30 s between batches"
        in html
    )
    # Numbered from 0 as the target rows, the events, opsctl and the execution page number them
    # (the page said "batch 1" for what every other door calls batch 0).
    assert "batch 0 (4): web-0, web-1, web-2, web-3" in html
    assert "batch 2 (2): web-8, web-9" in html
    assert "batch 3" not in html
    assert "db-1" not in html
