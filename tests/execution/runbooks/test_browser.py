"""In Debian's chromium (Playwright) against a live server with a real ``manage.py qcluster``:
an operator fills a runbook's form, previews the plan and its approval level, launches it;
two approvers approve it on the approvals page; the execution completes and its page links
back to the runbook."""

from __future__ import annotations

import time
from typing import Any

import pytest

from approvals.models import Approval
from execution.models import Execution
from execution.runbooks.services import runbook_create
from tests.approvals.test_browser import log_in, log_out
from tests.approvals.test_browser_workers import workers  # noqa: F401 - the real cluster fixture
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PARAMETERS = {
    "type": "object",
    "properties": {"service": {"type": "string", "enum": ["nginx", "api"], "title": "Service"}},
    "required": ["service"],
}
PLAN = {
    "name": "restart {{ params.service }} on staging",
    "environment": "staging",
    "steps": [
        {
            "name": "restart {{ params.service }}",
            "type": "noop",
            "target": {"hostname": "local-1"},
            "params": {},
        }
    ],
}


def _person(tenant: Any, name: str, role: str) -> Any:
    user = UserFactory(username=name)
    MembershipFactory(tenant=tenant, user=user, role=role)
    return user


def test_launch_from_the_form_approve_twice_and_watch_it_complete(
    live_server: Any,
    page: Any,
    tenant: Any,
    workers: Any,  # noqa: F811
) -> None:
    admin = _person(tenant, "ada-admin", "admin")
    operator = _person(tenant, "otto-operator", "operator")
    approvers = [_person(tenant, "anna-approver", "approver"), _person(tenant, "abel-approver", "approver")]
    runbook_create(
        tenant=tenant,
        actor=admin,
        slug="restart",
        name="Restart",
        parameters=PARAMETERS,
        plan=PLAN,
        min_approval_level=2,
    )
    base = live_server.url
    log_in(page, base, operator)
    page.goto(f"{base}/runbooks/")
    page.click("#runbooks-table a:has-text('Restart')")
    page.wait_for_url("**/runbooks/acme/restart/")
    page.select_option("#id_p_service", "api")
    page.click("#preview-button")
    page.wait_for_selector("#preview")
    assert "csrfmiddlewaretoken" not in page.url  # the form posts: no token in the history
    assert page.inner_text("#preview-level") == "2"
    assert '"name": "restart api on staging"' in page.inner_text("#preview-plan")
    shown_hash = page.inner_text("#preview-hash")
    page.once("dialog", lambda dialog: dialog.accept())  # "Launch this runbook?"
    page.click("#launch-button")
    page.wait_for_url("**/executions/*/")
    execution = Execution.objects.get()
    assert execution.plan_hash == shown_hash and execution.runbook["params"] == {"service": "api"}
    assert page.inner_text("#execution-status") == "pending_approval"
    assert page.inner_text("#runbook-link") == "restart v1"
    approval = Approval.objects.get(execution=execution)
    for approver in approvers:
        log_out(page)
        log_in(page, base, approver)
        page.goto(f"{base}/approvals/{approval.approval_id}/")
        page.fill("#id_comment", f"ok from {approver.username}")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button[value=approve]")
        page.wait_for_selector(".messages li.success")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and Execution.objects.get(pk=execution.pk).status != "completed":
        time.sleep(0.5)
    page.goto(f"{base}/executions/{execution.execution_id}/")
    assert page.inner_text("#execution-status") == "completed"
    log_out(page)
    log_in(page, base, operator)
    page.goto(f"{base}/executions/{execution.execution_id}/")
    page.click("#run-again-button")  # a runbook's Run again opens its form, filled in
    page.wait_for_url("**/runbooks/acme/restart/?from=*")
    assert page.eval_on_selector("#id_p_service", "el => el.value") == "api"
