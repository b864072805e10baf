"""The demo's runbooks: two runbooks, a schedule and a trigger, seeded once however often
the demo runs, and the read-only health check launches at level 0 for the operator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management import call_command

from execution.models import Execution
from execution.runbooks.models import Runbook, RunbookSchedule, RunbookTrigger
from execution.runbooks.services import runbook_preview, version_of

pytestmark = pytest.mark.django_db


def test_the_demo_seeds_runbooks_a_schedule_and_a_trigger_once(capsys: Any) -> None:
    call_command("demo", "--json", "--password", "demo-pass-1")
    call_command("demo", "--json", "--password", "demo-pass-1")
    assert sorted(Runbook.objects.values_list("slug", flat=True)) == ["health-check", "restart-prod"]
    assert RunbookSchedule.objects.count() == 1 and RunbookTrigger.objects.count() == 1
    health = Runbook.objects.get(slug="health-check")
    preview = runbook_preview(version=version_of(health), params={"host": "local-2"})
    assert preview.approval_level == 0 and preview.action_class == "read"
    restart = Runbook.objects.get(slug="restart-prod")
    assert runbook_preview(version=version_of(restart), params={"service": "api"}).approval_level == 2
    from opsconductor import embedded_pg

    saved = json.loads((embedded_pg.state_dir() / "demo-trigger.json").read_text())
    assert saved["id"] == str(RunbookTrigger.objects.get().trigger_id) and len(saved["secret"]) == 64
    assert not Execution.objects.exists()
