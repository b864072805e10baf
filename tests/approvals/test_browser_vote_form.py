"""The vote form in chromium: both decisions are confirmed, a rejection without a comment is
not sent, and the page reads at a phone's width with the plan's parameters and metadata."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.models import Approval, ApprovalVote
from execution.models import Execution
from tests.approvals.conftest import make_approval, plan_for
from tests.approvals.test_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_both_decisions_are_confirmed_and_a_rejection_says_why(
    live_server: Any, page: Any, tenant: Any, requester: Any, approver: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    log_in(page, live_server.url, approver)
    page.goto(f"{live_server.url}/approvals/{approval.approval_id}/")
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.click("button[value=reject]")  # no comment: not sent, the field says why
    assert (
        page.evaluate("document.getElementById('id_comment').validationMessage") == "Say why you reject it."
    )
    assert asked == []
    page.click("button[value=approve]")  # asked, and "no" keeps everything as it was
    page.fill("#id_comment", "wrong maintenance window")
    page.click("button[value=reject]")
    assert asked == [
        "Approve restart nginx on web-1 (staging, modify)?",
        "Reject restart nginx on web-1 (staging, modify)?",
    ]
    assert not ApprovalVote.objects.filter(approval=approval).exists()
    page.remove_listener("dialog", dismiss)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[value=reject]")
    page.wait_for_selector(".messages li.success")
    assert Approval.objects.get(pk=approval.pk).state == "rejected"
    assert ApprovalVote.objects.get(approval=approval).comment == "wrong maintenance window"


def test_the_approval_page_reads_at_a_phones_width_with_parameters_and_metadata(
    live_server: Any, browser: Any, tenant: Any, requester: Any, approver: Any
) -> None:
    plan = plan_for()
    plan["steps"][1]["params"] = {
        "command": "systemctl restart nginx && curl -fsS http://127.0.0.1/health " + "--retry 5 " * 12,
        "env": {"NGINX_WORKER_CONNECTIONS": "4096", "A_RATHER_LONG_VARIABLE_NAME_FOR_A_PHONE": "x" * 60},
    }
    approval = make_approval(tenant=tenant, actor=requester, plan=plan)
    Execution.objects.filter(pk=approval.execution.pk).update(
        metadata={"ticket": "OPS-4711", "change_id": "CHG-2026-118"}
    )
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=scheme)
        page = context.new_page()
        log_in(page, live_server.url, approver)
        page.goto(f"{live_server.url}/approvals/{approval.approval_id}/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        params = page.locator("pre[aria-label='parameters of step 1']")
        box = params.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        assert box["width"] > 300, "the parameters have the table's whole width"
        assert "systemctl restart nginx" in params.inner_text()
        metadata = page.inner_text("#plan-metadata")
        assert "ticket: OPS-4711" in metadata and "change_id: CHG-2026-118" in metadata
        context.close()
