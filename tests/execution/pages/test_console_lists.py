"""``/`` and ``/executions/``: home, search, filters in the URL, pages, complete live rows,
and a bounded number of queries whatever the page holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from execution.enums import ExecutionStatus, Role
from execution.models import Execution
from tests.factories import (
    ApprovalFactory,
    ApprovalVoteFactory,
    DeadLetterFactory,
    ExecutionFactory,
    ExecutionStepFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _plan(name: str, environment: str = "dev") -> dict[str, Any]:
    return {"name": name, "environment": environment, "steps": [{"name": "s", "type": "noop", "params": {}}]}


def _execution(tenant: Any, name: str, **kwargs: Any) -> Execution:
    environment = kwargs.pop("environment", "dev")
    execution = ExecutionFactory(
        tenant=tenant, plan_snapshot=_plan(name, environment), environment=environment, **kwargs
    )
    return execution  # type: ignore[no-any-return]


def _ids(body: str, *executions: Execution) -> list[bool]:
    return [str(e.execution_id) in body for e in executions]


def test_home_is_the_operators_page_not_a_404(operator: Any) -> None:
    response = _client(operator).get("/")
    assert response.status_code == 200
    assert "Awaiting your vote" in response.content.decode()
    assert Client().get("/").status_code == 302  # login first


def test_login_lands_on_home() -> None:
    from django.conf import settings

    assert settings.LOGIN_REDIRECT_URL == "/"


def test_home_shows_approvals_the_user_may_vote_on_running_failures_and_dlq(
    tenant: Any, operator: Any, approver: Any, other_tenant: Any
) -> None:
    mine = ApprovalFactory(execution=_execution(tenant, "restart db", actor=operator), approval_level=2)
    voted = ApprovalFactory(execution=_execution(tenant, "already voted", actor=operator))
    ApprovalVoteFactory(approval=voted, voter=approver)
    own = ApprovalFactory(execution=_execution(tenant, "approver's own", actor=approver))
    foreign = ApprovalFactory(execution=_execution(other_tenant, "other tenant"))
    running = _execution(tenant, "long job", status=ExecutionStatus.RUNNING)
    failed = _execution(tenant, "broken job", status=ExecutionStatus.FAILED, completed_at=timezone.now())
    old_failure = _execution(
        tenant, "ancient", status=ExecutionStatus.FAILED, completed_at=timezone.now() - dt.timedelta(days=3)
    )
    DeadLetterFactory(execution=failed)

    body = _client(approver).get("/").content.decode()
    assert str(mine.approval_id) in body
    assert str(voted.approval_id) not in body  # nothing left to do
    assert str(own.approval_id) not in body  # the requester never votes
    assert str(foreign.approval_id) not in body
    assert _ids(body, running, failed, old_failure) == [True, True, False]
    assert '<div class="n">1</div>dead letters open' in body

    # An operator (no vote right) sees no approval to vote on.
    assert str(mine.approval_id) not in _client(operator).get("/").content.decode()


def test_status_filter_is_applied(tenant: Any, viewer: Any) -> None:
    failed = _execution(tenant, "a", status=ExecutionStatus.FAILED)
    done = _execution(tenant, "b", status=ExecutionStatus.COMPLETED)
    body = _client(viewer).get("/executions/?status=failed").content.decode()
    assert _ids(body, failed, done) == [True, False]
    body = _client(viewer).get("/executions/?status=failed,completed").content.decode()
    assert _ids(body, failed, done) == [True, True]


def test_search_environment_requester_tag_and_date_filters(tenant: Any, viewer: Any, operator: Any) -> None:
    nginx = _execution(tenant, "restart nginx", environment="prod", actor=operator, tags=["web"])
    db = _execution(tenant, "vacuum database", environment="staging", tags=["db"])
    old = _execution(tenant, "restart nginx old", environment="prod")
    Execution.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    client = _client(viewer)

    def shown(query: str) -> list[bool]:
        response = client.get("/executions/?" + query)
        assert response.status_code == 200
        return _ids(response.content.decode(), nginx, db, old)

    assert shown("q=NGINX") == [True, False, True]
    assert shown("environment=staging") == [False, True, False]
    assert shown(f"requester={operator.username}") == [True, False, False]
    assert shown("tag=db") == [False, True, False]
    since = (timezone.now() - dt.timedelta(days=1)).date().isoformat()
    assert shown(f"q=nginx&from={since}") == [True, False, False]
    until = (timezone.now() - dt.timedelta(days=5)).date().isoformat()
    assert shown(f"to={until}") == [False, False, True]


def test_the_filter_stays_in_the_pager_links(tenant: Any, viewer: Any) -> None:
    for i in range(60):
        _execution(tenant, f"job {i}", status=ExecutionStatus.FAILED)
    _execution(tenant, "a success", status=ExecutionStatus.COMPLETED)
    client = _client(viewer)
    first = client.get("/executions/?status=failed").content.decode()
    assert "60 executions match" in first
    assert 'href="?status=failed&amp;page=2"' in first
    second = client.get("/executions/?status=failed&page=2").content.decode()
    assert second.count("<tr data-execution-id=") == 10
    assert 'href="?status=failed"' in second  # back to page 1 with the filter


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=exploded", "status"),
        ("from=yesterday", "from"),
        ("page=0", "page"),
        ("environment=moon", "environment"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(viewer: Any, query: str, field: str) -> None:
    response = _client(viewer).get("/executions/?" + query)
    assert response.status_code == 400
    assert f"{field}:" in response.content.decode()


def test_live_rows_are_complete_and_follow_the_filter(tenant: Any, viewer: Any, other_tenant: Any) -> None:
    prod = _execution(tenant, "prod job", environment="prod", status=ExecutionStatus.RUNNING)
    dev = _execution(tenant, "dev job", environment="dev", status=ExecutionStatus.RUNNING)
    foreign = _execution(other_tenant, "theirs", environment="prod")
    ids = ",".join(str(e.execution_id) for e in (prod, dev, foreign))
    body = _client(viewer).get(f"/executions/rows/?ids={ids}&environment=prod").content.decode()
    assert _ids(body, prod, dev, foreign) == [True, False, False]
    assert '<td data-role="environment">prod</td>' in body
    assert f'<td class="hide-narrow" data-role="requester">{prod.actor.username}</td>' in body


def test_list_and_home_queries_are_bounded(tenant: Any) -> None:
    admin = UserFactory(username="boss")
    MembershipFactory(tenant=tenant, user=admin, role=Role.ADMIN)
    statuses = [
        ExecutionStatus.RUNNING,
        ExecutionStatus.FAILED,
        ExecutionStatus.COMPLETED,
        ExecutionStatus.QUEUED,
    ]
    for i in range(200):
        execution = _execution(
            tenant, f"job {i}", status=statuses[i % 4], tags=["t"], completed_at=timezone.now()
        )
        ExecutionStepFactory(execution=execution, step_index=0, status=ExecutionStatus.COMPLETED)
        ExecutionStepFactory(execution=execution, step_index=1)
        if i % 10 == 0:
            ApprovalFactory(execution=_execution(tenant, f"needs vote {i}"))
        if i % 20 == 0:
            DeadLetterFactory(execution=execution)
    client = _client(admin)
    for url in ("/executions/", "/executions/?status=failed&tag=t&q=job", "/"):
        client.get(url)  # session and caches warm
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200
        # A constant, whatever the rows: the home page reads gates and freezes once each too;
        # every page asks the policy once whether to link to Notifications.
        budget = 17 if url == "/" else 16
        assert len(ctx.captured_queries) < budget, (url, [q["sql"][:120] for q in ctx.captured_queries])
    body = client.get("/executions/").content.decode()
    assert body.count("<tr data-execution-id=") == 50
