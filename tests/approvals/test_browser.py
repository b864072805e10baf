"""The operator pages in Debian's chromium (Playwright, headless) against a live server.

No workers run here, so an approved execution is asserted to move on to ``queued``;
test_browser_workers.py runs the same flows with a real ``manage.py qcluster`` to completed.
"""

from __future__ import annotations

from typing import Any

import pytest

from approvals.models import Approval, ApprovalVote
from execution.enums import ExecutionStatus, Role
from execution.models import Execution
from tests.approvals.conftest import ensure_policies, make_approval, member, plan_for
from tests.factories import DeadLetterFactory, ExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests"  # UserFactory's


def log_in(page: Any, base: str, user: Any) -> None:
    page.goto(f"{base}/accounts/login/?next=/approvals/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/approvals/")


def log_out(page: Any) -> None:
    page.click("header button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/")


def fits_the_laptop_screen(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_an_approver_approves_a_level_1_execution_and_sees_it_move_on(
    live_server: Any, page: Any, tenant: Any, requester: Any, approver: Any, queue_calls: Any
) -> None:
    long_plan = plan_for("nightly cache flush " + "with-a-very-long-name-" * 8)
    approval = make_approval(tenant=tenant, actor=requester, level=1, plan=long_plan)
    base = live_server.url
    log_in(page, base, approver)
    row = page.locator(f"tr[data-approval='{approval.approval_id}']")
    assert "rita-requester" in row.inner_text()
    assert fits_the_laptop_screen(page)
    row.locator("a.button").click()
    page.wait_for_url(f"**/approvals/{approval.approval_id}/")
    assert "systemctl restart nginx" in page.content()
    assert fits_the_laptop_screen(page)
    page.fill("#id_comment", "checked the change ticket")
    page.once("dialog", lambda dialog: dialog.accept())  # "Approve ...?"
    page.click("button[value=approve]")
    page.wait_for_selector(".messages li.success")
    assert "decided it" in page.inner_text(".messages")
    assert page.inner_text("#approval-state") == "approved"
    assert page.inner_text("#execution-status") in ("queued", "running", "completed")
    assert Execution.objects.get(pk=approval.execution.pk).status in (
        ExecutionStatus.QUEUED,
        ExecutionStatus.RUNNING,
        ExecutionStatus.COMPLETED,
    )
    assert page.locator("#vote-form").count() == 0
    # It left the queue of pending approvals.
    page.goto(f"{base}/approvals/")
    assert page.locator(f"tr[data-approval='{approval.approval_id}']").count() == 0


def test_a_level_2_execution_needs_a_second_approver(
    live_server: Any,
    page: Any,
    tenant: Any,
    requester: Any,
    approver: Any,
    second_approver: Any,
    queue_calls: Any,
) -> None:
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    base = live_server.url
    detail = f"{base}/approvals/{approval.approval_id}/"
    log_in(page, base, approver)
    page.goto(detail)
    page.once("dialog", lambda dialog: dialog.accept())  # "Approve ...?"
    page.click("button[value=approve]")
    page.wait_for_selector(".messages li.success")
    assert "1 of 2" in page.inner_text(".messages")
    assert page.inner_text("#approval-state") == "pending"
    assert "You voted approve" in page.inner_text("#no-vote-reason")
    log_out(page)
    log_in(page, base, second_approver)
    assert "1 of 2" in page.inner_text(f"tr[data-approval='{approval.approval_id}']")
    page.goto(detail)
    page.fill("#id_comment", "second pair of eyes")
    page.once("dialog", lambda dialog: dialog.accept())  # "Approve ...?"
    page.click("button[value=approve]")
    page.wait_for_selector(".messages li.success")
    assert page.inner_text("#approval-state") == "approved"
    assert Approval.objects.get(pk=approval.pk).approver == second_approver
    assert len(queue_calls) == 1


def test_the_requester_sees_no_approve_button_and_a_forged_post_is_refused(
    live_server: Any, page: Any, tenant: Any, requester: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester, level=1)
    base = live_server.url
    detail = f"{base}/approvals/{approval.approval_id}/"
    log_in(page, base, requester)
    page.goto(detail)
    assert page.locator("button[value=approve]").count() == 0
    assert page.locator("button[value=reject]").count() == 0
    assert "own execution" in page.inner_text("#no-vote-reason")
    # Forge the vote with the session cookie and a valid CSRF token (from the logout form).
    token = page.get_attribute("header input[name=csrfmiddlewaretoken]", "value")
    response = page.request.post(
        detail,
        form={"csrfmiddlewaretoken": token, "decision": "approve", "comment": "trust me"},
        headers={"Referer": detail},
    )
    assert response.status == 403
    assert "Vote refused" in response.text()
    assert not ApprovalVote.objects.filter(approval=approval).exists()
    assert Approval.objects.get(pk=approval.pk).state == "pending"


def test_a_tenant_admin_requeues_a_dead_letter_from_the_dlq_page(
    live_server: Any, page: Any, tenant: Any, requester: Any, dlq_calls: Any
) -> None:
    ensure_policies()
    admin = member(tenant, "ann-admin", Role.ADMIN)
    execution = ExecutionFactory(
        tenant=tenant, actor=requester, status=ExecutionStatus.FAILED, plan_snapshot=plan_for("flaky deploy")
    )
    entry = DeadLetterFactory(execution=execution, last_error="connection refused")
    base = live_server.url
    log_in(page, base, admin)
    page.goto(f"{base}/dlq/")
    row = page.locator(f"tr[data-dlq='{entry.dlq_id}']")
    assert "connection refused" in row.inner_text()
    assert fits_the_laptop_screen(page)
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Requeue')").click()
    page.wait_for_selector(".messages li.success")
    assert "requeued" in page.inner_text(".messages")
    assert len(dlq_calls) == 1
    assert Execution.objects.get(pk=execution.pk).status in (
        ExecutionStatus.QUEUED,
        ExecutionStatus.COMPLETED,
    )
    assert page.locator(f"tr[data-dlq='{entry.dlq_id}'] button:has-text('Requeue')").count() == 0
