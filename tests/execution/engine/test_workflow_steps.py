"""``workflow`` steps through the real engine (``manage.py qcluster`` worker processes) against
the loopback Automation Service stand-in that runs real multi-step jobs."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from execution.enums import ConnectionType, ExecutionStatus
from execution.models import DeadLetter, Execution, ExecutionEvent, ExecutionStep
from execution.realtime.reader import event_messages
from execution.secrets.store import secret_set
from execution.services.cancel import execution_cancel
from tests.execution.engine.helpers import enqueue, make_execution, wait_until, worker_cluster
from tests.execution.test_canary import full_database_text
from tests.factories import AssetFactory
from tests.support.automation import AutomationStandIn
from tests.support.processes import free_port, pg_dump_data

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FAST_RETRIES = {"OPS_RETRY_BACKOFF_BASE_SECONDS": "0.2", "SERVICE_RETRIES": "1"}
FINISHED = {"completed", "failed", "cancelled", "timeout", "partial"}


def workflows(tmp_path: Path) -> dict[str, list[tuple[str, str]]]:
    flag = tmp_path / "second-run"
    return {
        "deploy": [
            ("build", 'echo "building $INPUT_VERSION"'),
            ("ship", "sleep 0.5; echo shipped"),
        ],
        "migrate": [("check", "echo checked"), ("migrate", "echo 'relation users is locked' >&2; exit 3")],
        # Fails on its first run, succeeds on the next one.
        "flaky": [("once", f"if [ -f {flag} ]; then echo recovered; else touch {flag}; exit 1; fi")],
        "long": [("wait", "echo waiting; sleep 60"), ("never", "echo never")],
        "leaky": [
            ("echo", 'echo "token is $INPUT_TOKEN"; echo "stderr $INPUT_TOKEN" >&2'),
            ("fail", 'echo "rejected token $INPUT_TOKEN" >&2; exit 2'),
        ],
    }


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AutomationStandIn]:
    with AutomationStandIn(workflows(tmp_path)) as stand_in:
        yield stand_in


@pytest.fixture
def target(tenant: Any) -> Any:
    return AssetFactory(
        tenant=tenant, hostname="app-3", connection_type=ConnectionType.SSH, address="10.0.0.3"
    )


def workflow_step(workflow: str, **extra: Any) -> dict[str, Any]:
    step = {"name": f"run {workflow}", "type": "workflow", "target": {"hostname": "app-3"}}
    step["params"] = {"workflow": workflow, "inputs": extra.pop("inputs", {})}
    return {**step, **extra}


def run_to_end(execution: Execution, service_url: str, timeout: float = 90, **env: str) -> Execution:
    with worker_cluster(workers=1, AUTOMATION_SERVICE_URL=service_url, **FAST_RETRIES, **env):
        wait_until(
            lambda: Execution.objects.get(pk=execution.pk).status in FINISHED, timeout, what="the execution"
        )
    return Execution.objects.get(pk=execution.pk)


def step0(execution: Execution) -> ExecutionStep:
    return ExecutionStep.objects.get(execution=execution, step_index=0)


def test_a_workflow_step_completes_with_its_job_id_history_and_streamed_output(
    tenant: Any, operator: Any, target: Any, service: AutomationStandIn
) -> None:
    execution = make_execution(
        tenant=tenant, actor=operator, steps=[workflow_step("deploy", inputs={"version": "1.4.2"})]
    )
    enqueue(execution)
    execution = run_to_end(execution, service.url)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    (job,) = service.jobs.values()
    assert job.key == f"{execution.execution_id}:0:0" and job.status == "completed"
    output = step0(execution).output_data
    assert output["automation_job_id"] == job.id and output["workflow"] == "deploy"
    assert output["automation_history_url"].startswith(f"{service.url}/api/v1/executions?tenant=acme")
    assert output["stdout"] == "building 1.4.2\nshipped\n"
    streamed = ExecutionEvent.objects.filter(execution=execution, event_type="step_output")
    assert "".join(e.details["text"] for e in streamed if e.details["stream"] == "stdout") == output["stdout"]


def test_a_failing_job_fails_the_step_with_the_services_reason_and_each_retry_starts_a_new_job(
    tenant: Any, operator: Any, target: Any, service: AutomationStandIn
) -> None:
    execution = make_execution(
        tenant=tenant, actor=operator, sla_class="fast", steps=[workflow_step("migrate", max_retries=2)]
    )
    enqueue(execution)
    execution = run_to_end(execution, service.url)
    assert execution.status == ExecutionStatus.FAILED
    step = step0(execution)
    assert step.status == ExecutionStatus.FAILED and step.retry_count == 2
    assert "ended failed (exit 3): step 'migrate' exited 3: relation users is locked" in step.error_message
    assert "relation users is locked" in execution.error_message
    eid = execution.execution_id
    assert service.keys() == [f"{eid}:0:0", f"{eid}:0:1", f"{eid}:0:2"]  # three runs, three jobs
    assert not DeadLetter.objects.filter(execution=execution).exists()  # a failed step is no fault


def test_a_retry_after_a_failed_job_starts_a_new_job_and_completes(
    tenant: Any, operator: Any, target: Any, service: AutomationStandIn
) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=[workflow_step("flaky", max_retries=1)])
    enqueue(execution)
    execution = run_to_end(execution, service.url)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    first, second = service.jobs.values()
    assert (first.status, second.status) == ("failed", "completed")
    assert first.key != second.key and second.key.endswith(":0:1")
    assert step0(execution).output_data["automation_job_id"] == second.id


def test_cancelling_the_execution_cancels_the_remote_job(
    tenant: Any, operator: Any, target: Any, service: AutomationStandIn
) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=[workflow_step("long"), {"type": "noop"}])
    enqueue(execution)
    with worker_cluster(workers=1, AUTOMATION_SERVICE_URL=service.url, **FAST_RETRIES):
        wait_until(lambda: "waiting" in "".join(j.stdout for j in service.jobs.values()), 60, what="the job")
        execution_cancel(execution=Execution.objects.get(pk=execution.pk), actor=operator)
        wait_until(
            lambda: Execution.objects.get(pk=execution.pk).status == ExecutionStatus.CANCELLED,
            30,
            what="the execution cancelled",
        )
        (job,) = service.jobs.values()
        service.wait_for(job.id, {"cancelled"}, timeout=1.0)
    assert [s["status"] for s in job.steps] == ["cancelled", "cancelled"]
    assert job.process is not None and job.process.poll() is not None  # its process is gone
    steps = ExecutionStep.objects.filter(execution=execution).order_by("step_index")
    assert [s.status for s in steps] == ["cancelled", "cancelled"]
    assert steps[0].output_data["automation_job_id"] == job.id


def test_the_step_timeout_ends_the_step_timeout_and_cancels_the_remote_job(
    tenant: Any, operator: Any, target: Any, service: AutomationStandIn
) -> None:
    execution = make_execution(
        tenant=tenant, actor=operator, steps=[workflow_step("long", timeout_seconds=2)]
    )
    enqueue(execution)
    execution = run_to_end(execution, service.url)
    assert execution.status == ExecutionStatus.TIMEOUT
    (job,) = service.jobs.values()
    assert job.status == "cancelled" and job.timeout_seconds == 7  # the service's own backstop: 2 + 5
    step = step0(execution)
    assert step.status == ExecutionStatus.TIMEOUT
    assert (
        step.error_message
        == f"step timeout: workflow 'long' job {job.id} cancelled on the Automation Service"
    )


def test_the_service_down_fails_the_step_after_the_clients_retries(
    tenant: Any, operator: Any, target: Any
) -> None:
    execution = make_execution(
        tenant=tenant, actor=operator, sla_class="fast", steps=[workflow_step("deploy")]
    )
    enqueue(execution)
    execution = run_to_end(execution, f"http://127.0.0.1:{free_port()}")
    assert execution.status == ExecutionStatus.FAILED
    message = step0(execution).error_message
    assert message.startswith("workflow 'deploy' could not start: Automation Service unreachable at")
    assert "after 1 retries" in message


def test_a_canary_secret_in_inputs_reaches_the_service_and_no_sink(
    tenant: Any, operator: Any, target: Any, service: AutomationStandIn, tmp_path: Path
) -> None:
    canary = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    secret_set(tenant=tenant, path="acme/canary", value=canary)
    token = {"type": "secret", "path": "db:acme/canary"}
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[workflow_step("leaky", inputs={"token": token}, continue_on_error=True), {"type": "noop"}],
    )
    enqueue(execution)
    log_path = tmp_path / "worker.log"
    with (
        open(log_path, "wb") as log,
        worker_cluster(
            workers=1, log=log, AUTOMATION_SERVICE_URL=service.url, LOG_LEVEL="DEBUG", **FAST_RETRIES
        ),
    ):
        wait_until(
            lambda: Execution.objects.get(pk=execution.pk).status in FINISHED, 90, what="the execution"
        )
    execution = Execution.objects.get(pk=execution.pk)
    assert execution.status == ExecutionStatus.PARTIAL, execution.error_message
    (job,) = service.jobs.values()
    assert job.env["INPUT_TOKEN"] == canary  # resolved just in time and sent to the executor
    step = step0(execution)
    assert step.output_data["stdout"] == "token is ***\n"
    assert "rejected token ***" in step.error_message

    assert canary not in full_database_text()
    assert canary not in pg_dump_data()
    events = list(ExecutionEvent.objects.filter(execution=execution).order_by("id"))
    messages = json.dumps(event_messages(events))
    assert '"step_output"' in messages and "token is ***" in messages and canary not in messages
    logs = log_path.read_text(errors="replace")
    assert "POST /api/v1/workflows/leaky/runs" in logs  # the worker's DEBUG logs are captured
    assert canary not in logs
    api = APIClient()
    api.force_authenticate(operator)
    base = f"/api/v1/executions/{execution.execution_id}/"
    for url in (base, f"{base}events/?after=0", "/api/v1/executions/"):
        response = api.get(url)
        assert response.status_code == 200, url
        assert canary not in response.content.decode(), url
    assert "token is ***" in api.get(base).content.decode()
