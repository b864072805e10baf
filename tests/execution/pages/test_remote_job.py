"""The Automation Service job behind a step, where operators look: the execution page and
``manage.py executions show`` (with ``--remote``, every attempt's job from the service)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from execution.runners.base import ResolvedTarget
from execution.runners.registry import get_runner
from tests.execution.runners.conftest import make_ctx
from tests.factories import ExecutionFactory, ExecutionStepFactory
from tests.support.automation import AutomationStandIn

pytestmark = pytest.mark.django_db

TARGET = ResolvedTarget(asset_id="3", hostname="app-3", connection_type="ssh")


@pytest.fixture
def ran_twice(tenant: Any, settings: Any) -> Any:
    """An execution whose workflow step ran twice on the stand-in (a failed job, then a retry)."""
    settings.SERVICE_RETRIES = 0
    flaky = [("once", 'if [ -n "$INPUT_OK" ]; then echo ok; else exit 1; fi')]
    with AutomationStandIn({"flaky": flaky}) as service:
        settings.AUTOMATION_SERVICE_URL = service.url
        execution = ExecutionFactory(tenant=tenant, plan_snapshot={"name": "wf", "steps": []})
        results = [
            get_runner("workflow").run(
                make_ctx(
                    "workflow",
                    {"workflow": "flaky", "inputs": inputs},
                    target=TARGET,
                    execution_id=str(execution.execution_id),
                    attempt=attempt,
                )
            )
            for attempt, inputs in ((0, {}), (1, {"ok": "yes"}))
        ]
        assert [r.status for r in results] == ["failed", "completed"]
        ExecutionStepFactory(
            execution=execution,
            step_index=0,
            step_name="run flaky",
            step_type="workflow",
            target_hostname="app-3",
            status="completed",
            retry_count=1,
            output_data=results[1].output,
        )
        yield execution, service


def test_the_execution_page_shows_the_remote_job_and_its_history_link(viewer: Any, ran_twice: Any) -> None:
    execution, service = ran_twice
    client = Client()
    client.force_login(viewer)
    body = client.get(f"/executions/{execution.execution_id}/").content.decode()
    assert '<code data-role="remote-job-id">job-2</code>' in body
    history = (
        f"{service.url}/api/v1/executions?tenant=acme&amp;hostname=app-3&amp;workflow=flaky&amp;limit=50"
    )
    assert f'href="{history}"' in body


def test_executions_show_names_the_remote_job_and_remote_lists_every_attempt(ran_twice: Any) -> None:
    execution, service = ran_twice
    out = StringIO()
    call_command("executions", "show", str(execution.execution_id), stdout=out)
    shown = out.getvalue()
    assert "remote job job-2 (workflow flaky)  history: " + service.url in shown
    assert "attempt" not in shown  # the service is asked only with --remote
    out = StringIO()
    call_command("executions", "show", str(execution.execution_id), "--remote", stdout=out)
    assert "attempt 1: job job-2 completed" in out.getvalue()
    assert "attempt 0: job job-1 failed" in out.getvalue()
