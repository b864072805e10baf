"""Change freezes (docs/approvals.md#freezes): a freeze of a tenant's environment refuses a
submission or raises its approval level, and says so on the submit answer, the approval page
and the home page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from approvals.models import Approval, ChangeFreeze
from execution.models import Execution
from tests.execution.api.conftest import client_for, noop_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/executions/"


def freeze(
    tenant: Any, *, environment: str = "staging", effect: str = "refuse", **fields: Any
) -> ChangeFreeze:
    now = timezone.now()
    values: dict[str, Any] = {
        "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(hours=1),
        "approval_level": 2,
        "reason": "year-end freeze",
        **fields,
    }
    return ChangeFreeze.objects.create(tenant=tenant, environment=environment, effect=effect, **values)


def test_a_refusing_freeze_refuses_the_submission_and_stores_nothing(tenant: Any, operator: Any) -> None:
    frozen = freeze(tenant)
    answer = client_for(operator).post(URL, noop_body(environment="staging"), format="json")
    assert answer.status_code == 409, answer.content
    body = answer.json()
    assert body["reason"] == "change_freeze" and "year-end freeze" in body["detail"]
    assert body["change_freeze"]["freeze_id"] == frozen.pk and body["change_freeze"]["effect"] == "refuse"
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("environment", "starts", "ends", "tenant_is_other"),
    [
        ("dev", -1, 1, False),  # another environment
        ("staging", 1, 2, False),  # not started yet
        ("staging", -2, -1, False),  # over
        ("staging", -1, 1, True),  # another tenant's
    ],
)
def test_a_freeze_elsewhere_or_at_another_time_refuses_nothing(
    tenant: Any,
    other_tenant: Any,
    operator: Any,
    environment: str,
    starts: int,
    ends: int,
    tenant_is_other: bool,
) -> None:
    now = timezone.now()
    freeze(
        other_tenant if tenant_is_other else tenant,
        environment=environment,
        starts_at=now + timedelta(hours=starts),
        ends_at=now + timedelta(hours=ends),
    )
    answer = client_for(operator).post(URL, noop_body(environment="staging"), format="json")
    assert answer.status_code in (201, 202), answer.content
    assert "change_freeze" not in answer.json()


def test_a_raising_freeze_raises_the_level_and_shows_on_the_answer_and_the_pages(
    tenant: Any, operator: Any, approver: Any
) -> None:
    frozen = freeze(tenant, effect="raise", approval_level=2, reason="release week")
    answer = client_for(operator).post(URL, noop_body(environment="staging", level=0), format="json")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["status"] == "pending_approval" and body["approval_level"] == 2
    assert body["change_freeze"] == frozen.summary()
    approval = Approval.objects.get(execution__execution_id=body["execution_id"])
    assert approval.approval_level == 2 and approval.freeze_id == frozen.pk
    pages = Client()
    pages.force_login(approver)
    detail = pages.get(f"/approvals/{approval.approval_id}/").content.decode()
    assert 'id="freeze"' in detail and "release week" in detail
    home = pages.get("/").content.decode()
    assert 'id="freezes"' in home and "release week" in home and "approval level at least 2" in home


def test_a_raising_freeze_never_lowers_a_higher_level(tenant: Any, operator: Any) -> None:
    freeze(tenant, effect="raise", approval_level=1)
    answer = client_for(operator).post(URL, noop_body(environment="staging", level=3), format="json")
    assert answer.status_code == 202 and answer.json()["approval_level"] == 3


def test_the_refusing_freeze_decides_first_else_the_one_raising_the_level_most(
    tenant: Any, operator: Any
) -> None:
    freeze(tenant, effect="raise", approval_level=2)
    highest = freeze(tenant, effect="raise", approval_level=3, reason="release week")
    freeze(tenant, effect="raise", approval_level=3, reason="a later one of the same level")
    freeze(tenant, environment="dev", effect="refuse", approval_level=1)  # another environment
    client = client_for(operator)
    raised = client.post(URL, noop_body(environment="staging", name="raised"), format="json")
    assert raised.status_code == 202, raised.content
    assert raised.json()["approval_level"] == 3
    assert raised.json()["change_freeze"] == highest.summary()
    # A refusing freeze of the lowest level, created last, still decides.
    refusing = freeze(tenant, effect="refuse", approval_level=1, reason="incident")
    refused = client.post(URL, noop_body(environment="staging", name="refused"), format="json")
    assert refused.status_code == 409, refused.content
    assert refused.json()["change_freeze"]["freeze_id"] == refusing.pk


@pytest.mark.parametrize("who", ["outsider", "viewer"])
def test_a_frozen_environment_answers_a_refused_submitter_as_before_the_freeze(
    request: pytest.FixtureRequest, tenant: Any, who: str
) -> None:
    # The freeze is read with the membership but applies after both rights checks: the
    # answer tells a non-member (or a role that may not submit) nothing of the freeze.
    user = request.getfixturevalue(who)
    before = client_for(user).post(URL, noop_body(environment="staging"), format="json")
    freeze(tenant)
    after = client_for(user).post(URL, noop_body(environment="staging"), format="json")
    assert before.status_code == after.status_code == 403, after.content
    assert before.json() == after.json()
