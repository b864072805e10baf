"""End to end with real workers: approve in the browser, a ``manage.py qcluster`` runs it.

Skipped when the engine's queue (execution.services.queue) is not in the checkout.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from execution.enums import ExecutionStatus, QueueStatus, Role
from execution.models import Execution
from tests.approvals.conftest import (
    ensure_policies,
    make_approval,
    member,
)
from tests.approvals.test_browser import log_in
from tests.factories import (
    AssetFactory,
    DeadLetterFactory,
    ExecutionFactory,
    ExecutionStepFactory,
    QueueItemFactory,
)
from tests.support.processes import manage_argv, stop_process, subprocess_env

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
NOOP_PLAN = {
    "name": "noop for the workers",
    "environment": "dev",
    "steps": [{"name": "nothing", "type": "noop", "target": {"hostname": "local-1"}, "params": {}}],
}
FINISHED = {
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.PARTIAL,
    ExecutionStatus.TIMEOUT,
}


@pytest.fixture
def workers(tenant: Any) -> Iterator[subprocess.Popen[bytes]]:
    AssetFactory(tenant=tenant, hostname="local-1")  # NOOP_PLAN's target
    log = tempfile.NamedTemporaryFile(prefix="qcluster-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        manage_argv("qcluster"), env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        stop_process(proc)
        log.close()


def wait_finished(execution: Any, page: Any, url: str, deadline_s: float = 180) -> str:
    deadline = time.monotonic() + deadline_s
    status = ""
    while time.monotonic() < deadline:
        status = Execution.objects.get(pk=execution.pk).status
        if status in FINISHED:
            break
        time.sleep(0.5)
    page.goto(url)
    return status


def test_an_approved_execution_runs_to_completed(
    live_server: Any, page: Any, tenant: Any, requester: Any, approver: Any, workers: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester, level=1, plan=NOOP_PLAN)
    detail = f"{live_server.url}/approvals/{approval.approval_id}/"
    log_in(page, live_server.url, approver)
    page.goto(detail)
    page.once("dialog", lambda dialog: dialog.accept())  # "Approve ...?"
    page.click("button[value=approve]")
    page.wait_for_selector(".messages li.success")
    assert wait_finished(approval.execution, page, detail) == ExecutionStatus.COMPLETED
    assert page.inner_text("#execution-status") == "completed"


def test_a_requeued_dead_letter_runs(
    live_server: Any, page: Any, tenant: Any, requester: Any, workers: Any
) -> None:
    ensure_policies()
    admin = member(tenant, "ann-admin", Role.ADMIN)
    execution = ExecutionFactory(
        tenant=tenant,
        actor=requester,
        status=ExecutionStatus.FAILED,
        plan_snapshot=NOOP_PLAN,
        environment="dev",
    )
    ExecutionStepFactory(execution=execution, step_index=0, step_name="nothing", step_type="noop")
    item = QueueItemFactory(execution=execution, status=QueueStatus.FAILED, attempt_count=3, max_attempts=3)
    entry = DeadLetterFactory(execution=execution, attempt_count=3, original_queue_id=item.queue_id)
    log_in(page, live_server.url, admin)
    page.goto(f"{live_server.url}/dlq/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"tr[data-dlq='{entry.dlq_id}'] button:has-text('Requeue')").click()
    page.wait_for_selector(".messages li.success")
    assert wait_finished(execution, page, f"{live_server.url}/dlq/") == ExecutionStatus.COMPLETED
