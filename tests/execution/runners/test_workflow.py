"""``workflow`` steps and ``command`` steps on an automation asset, against a loopback
Automation Service stand-in that runs real jobs (tests/support/automation.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from execution.plans.schema import PlanInvalid, submission_validate
from execution.runners.base import ResolvedTarget
from execution.runners.connections import automation
from execution.runners.registry import get_runner
from execution.services.classify import plan_classify
from tests.execution.runners.conftest import make_ctx
from tests.support.automation import AutomationStandIn
from tests.support.processes import free_port

TARGET = ResolvedTarget(asset_id="3", hostname="app-3", connection_type="ssh", address="10.0.0.3")
WORKFLOWS = {
    "deploy": [
        ("build", 'echo "building $INPUT_VERSION"'),
        ("ship", "sleep 0.3; echo shipped; echo 'warming caches' >&2"),
    ],
    "migrate": [("check", "echo checked"), ("migrate", "echo 'relation users is locked' >&2; exit 3")],
    "long": [("wait", "sleep 30"), ("never", "echo never")],
}


@pytest.fixture
def service(settings: Any) -> Any:
    settings.SERVICE_RETRIES = 1
    with AutomationStandIn(WORKFLOWS) as stand_in:
        settings.AUTOMATION_SERVICE_URL = stand_in.url
        yield stand_in


def workflow_ctx(workflow: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    params = {"workflow": workflow, "inputs": inputs or {}}
    return make_ctx("workflow", params, target=TARGET, **kwargs)


def run(ctx: Any) -> Any:
    return get_runner("workflow").run(ctx)


def test_a_workflow_runs_to_completed_streams_its_output_and_records_the_job(
    service: AutomationStandIn,
) -> None:
    chunks: list[tuple[str, str]] = []
    result = run(workflow_ctx("deploy", {"version": "1.4.2"}, emit_output=lambda s, t: chunks.append((s, t))))
    assert result.status == "completed", result.error_message
    (job,) = service.jobs.values()
    assert job.key == "00000000-0000-0000-0000-000000000001:0:0"
    assert job.target["hostname"] == "app-3" and job.tenant == "acme"
    assert result.output["automation_job_id"] == job.id
    assert result.output["workflow"] == "deploy" and result.output["job_status"] == "completed"
    assert result.output["stdout"] == "building 1.4.2\nshipped\n"
    assert result.output["steps"] == [
        {"name": "build", "status": "completed", "exit_code": 0},
        {"name": "ship", "status": "completed", "exit_code": 0},
    ]
    assert result.output["automation_history_url"] == (
        f"{service.url}/api/v1/executions?tenant=acme&hostname=app-3&workflow=deploy&limit=50"
    )
    streamed = "".join(t for s, t in chunks if s == "stdout")
    assert streamed == "building 1.4.2\nshipped\n"
    assert "".join(t for s, t in chunks if s == "stderr") == "warming caches\n"
    assert chunks[0] == ("automation", f"Automation Service job {job.id} running\n")
    assert ("automation", "step ship: completed\n") in chunks
    # The history the link points at lists the job (the client's jobs_history reads it).
    from execution.clients.automation import automation_service_client

    client = automation_service_client()
    assert client is not None
    history = client.jobs_history(tenant="acme", hostname="app-3", workflow="deploy")
    assert [h["id"] for h in history] == [job.id] and history[0]["status"] == "completed"


def test_a_failing_workflow_fails_the_step_with_the_services_reason(service: AutomationStandIn) -> None:
    result = run(workflow_ctx("migrate"))
    assert result.status == "failed"
    assert "job job-1 ended failed (exit 3)" in result.error_message
    assert "step 'migrate' exited 3: relation users is locked" in result.error_message
    assert result.exit_code == 3
    assert [s["status"] for s in result.output["steps"]] == ["completed", "failed"]


def test_the_same_attempt_twice_follows_one_job_and_a_retry_starts_a_new_one(
    service: AutomationStandIn,
) -> None:
    first = run(workflow_ctx("deploy", attempt=0))
    again = run(workflow_ctx("deploy", attempt=0))  # a duplicate delivery of the same attempt
    retry = run(workflow_ctx("deploy", attempt=1))
    assert first.output["automation_job_id"] == again.output["automation_job_id"] == "job-1"
    assert retry.output["automation_job_id"] == "job-2"
    eid = "00000000-0000-0000-0000-000000000001"
    assert service.keys() == [f"{eid}:0:0", f"{eid}:0:1"]


def test_a_cancel_leaves_the_job_to_cleanup_which_cancels_it(service: AutomationStandIn) -> None:
    ctx = workflow_ctx("long", timeout=60)
    threading.Timer(1.0, ctx.cancel_event.set).start()
    result = run(ctx)
    assert result.status == "cancelled"
    job = service.job(result.output["automation_job_id"])
    assert job.status == "running" and ctx.held.names() == [f"automation job {job.id}"]
    get_runner("workflow").cleanup(ctx, "cancelled")
    assert job.status == "cancelled" and [s["status"] for s in job.steps] == ["cancelled", "cancelled"]
    assert job.process is not None and job.process.wait(5) != 0  # killed, not finished


def test_the_step_timeout_leaves_the_job_to_cleanup_which_cancels_it(service: AutomationStandIn) -> None:
    ctx = workflow_ctx("long", timeout=1.0)
    result = run(ctx)
    assert result.status == "timeout"
    assert (
        result.error_message == "step timeout: workflow 'long' job job-1 cancelled on the Automation Service"
    )
    get_runner("workflow").cleanup(ctx, "timeout")
    assert service.job(result.output["automation_job_id"]).status == "cancelled"
    assert not ctx.held.names()


def test_an_unknown_workflow_fails_at_start(service: AutomationStandIn) -> None:
    result = run(workflow_ctx("nope"))
    assert result.status == "failed"
    assert result.error_message.startswith("workflow 'nope' could not start: Automation Service:")
    assert "404" in result.error_message and not service.jobs


def test_the_service_down_fails_after_the_clients_retries(settings: Any) -> None:
    settings.AUTOMATION_SERVICE_URL = f"http://127.0.0.1:{free_port()}"
    settings.SERVICE_RETRIES = 2
    result = run(workflow_ctx("deploy"))
    assert result.status == "failed"
    assert "workflow 'deploy' could not start: Automation Service unreachable at" in result.error_message
    assert "after 2 retries" in result.error_message


def test_without_a_service_url_the_step_fails_clearly(settings: Any) -> None:
    settings.AUTOMATION_SERVICE_URL = None
    result = run(workflow_ctx("deploy"))
    assert result.status == "failed" and "AUTOMATION_SERVICE_URL is not set" in result.error_message


@pytest.mark.django_db
def test_following_a_job_touches_no_database(
    service: AutomationStandIn, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        assert run(workflow_ctx("deploy")).status == "completed"


def test_a_retried_command_on_an_automation_asset_starts_a_new_job(
    service: AutomationStandIn, tmp_path: Path
) -> None:
    """The key used to lack the attempt: the retry was answered with the first, failed job."""
    flag = tmp_path / "ready"
    target = ResolvedTarget(asset_id="4", hostname="app-4", connection_type="automation")
    params = {"command": f"test -f {flag} && echo ready"}
    first = automation.run_command(make_ctx("command", params, target=target, attempt=0))
    assert first.status == "failed" and first.exit_code == 1
    flag.touch()
    retry = automation.run_command(make_ctx("command", params, target=target, attempt=1))
    assert retry.status == "completed", retry.error_message
    assert retry.output["stdout"] == "ready\n"
    assert retry.output["automation_job_id"] != first.output["automation_job_id"]


# --- the plan schema ----------------------------------------------------------------------


def body(step: dict[str, Any]) -> dict[str, Any]:
    return {"tenant": "acme", "plan": {"name": "wf", "environment": "dev", "steps": [step]}}


def problems(step: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(PlanInvalid) as info:
        submission_validate(body(step))
    return {p.path: p.message for p in info.value.problems}


def test_the_alias_is_accepted_and_the_default_action_class_is_modify() -> None:
    step = {
        "name": "deploy",
        "type": "automation_workflow",
        "target": {"hostname": "app-3"},
        "params": {"workflow": "deploy", "inputs": {"token": {"type": "secret", "path": "db:acme/t"}}},
    }
    plan = submission_validate(body(step)).plan
    assert plan["steps"][0]["type"] == "workflow"
    assert plan_classify(plan=plan).step_action_classes == ["modify"]


def test_bad_workflow_steps_name_their_fields() -> None:
    assert "plan.steps[0].target" in problems(
        {"name": "w", "type": "workflow", "params": {"workflow": "deploy"}}
    )
    bad = problems(
        {
            "name": "w",
            "type": "workflow",
            "target": {"hostname": "app-3"},
            "params": {"workflow": "../etc", "inputs": ["x"], "input": {}},
        }
    )
    assert set(bad) == {
        "plan.steps[0].params.workflow",
        "plan.steps[0].params.inputs",
        "plan.steps[0].params.input",
    }


@pytest.mark.django_db
def test_a_workflow_step_without_a_target_is_a_400_over_rest_and_nothing_is_stored(operator: Any) -> None:
    from execution.models import Execution
    from tests.execution.api.conftest import client_for

    step = {"name": "w", "type": "workflow", "params": {"workflow": "deploy", "inputs": {}}}
    answer = client_for(operator).post("/api/v1/executions/", body(step), format="json")
    assert answer.status_code == 400
    assert "plan.steps[0].target" in [e["path"] for e in answer.json()["errors"]]
    assert not Execution.objects.exists()


def test_a_dry_run_names_the_workflow_and_its_input_names_only() -> None:
    ctx = workflow_ctx("deploy", {"token": {"type": "secret", "path": "db:acme/t"}, "version": "2"})
    result = get_runner("workflow").dry_run(ctx)
    assert result.status == "completed"
    assert result.output["would_run"] == {
        "type": "workflow",
        "target": "app-3",
        "workflow": "deploy",
        "inputs": ["token", "version"],
    }
