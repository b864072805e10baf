"""manage.py approve / reject."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from approvals.models import Approval
from tests.approvals.conftest import make_approval

pytestmark = pytest.mark.django_db


def test_approve_command(tenant: Any, requester: Any, approver: Any, queue_calls: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    out = StringIO()
    call_command(
        "approve",
        str(approval.execution.execution_id),
        "--user",
        approver.username,
        "--comment",
        "ok",
        stdout=out,
    )
    assert "approval approved" in out.getvalue()
    assert "queued" in out.getvalue()
    assert Approval.objects.get(pk=approval.pk).approver_comment == "ok"


def test_reject_command(tenant: Any, requester: Any, approver: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    out = StringIO()
    call_command(
        "reject",
        str(approval.execution.execution_id),
        "--user",
        approver.username,
        "--comment",
        "not now",
        stdout=out,
    )
    assert "approval rejected" in out.getvalue()


def test_refused_vote_is_a_command_error_with_the_reason(tenant: Any, requester: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    with pytest.raises(CommandError, match="requester"):
        call_command("approve", str(approval.execution.execution_id), "--user", requester.username)


def test_unknown_user_or_execution(tenant: Any, requester: Any, approver: Any) -> None:
    with pytest.raises(CommandError, match="no user"):
        call_command("approve", "00000000-0000-0000-0000-000000000000", "--user", "nobody")
    with pytest.raises(CommandError, match=r"^not found: no such execution 0{8}-"):
        call_command("approve", "00000000-0000-0000-0000-000000000000", "--user", approver.username)
    with pytest.raises(CommandError, match="not an execution id"):
        call_command("approve", "nope", "--user", approver.username)
