"""Bad input to the real admin is the client's error, never a 500 (execution/admin/input.py).

Every registered changelist — ours and the libraries' own (users, groups, django-q2, axes),
which the admin site gives the same checked handling (opsconductor/admin_site.py) — is
walked through the test client as a superuser (with a membership) and as a tenant admin
(staff, no superuser; they open only what the policy lets them): each
of its filter parameters with a value that is no value of the field (an enum value that does
not exist among them), a date hierarchy year past ``datetime``'s range, and each of its
actions posted with row keys that are no primary key. Filters answer the changelist's own
"invalid filter" redirect (``?e=1``), actions a 400.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client, RequestFactory
from django.urls import reverse

from execution.enums import ExecutionStatus, Role
from tests.approvals.conftest import make_approval
from tests.factories import DeadLetterFactory, ExecutionFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db
BAD_KEYS = ["abc", "1'", "1.5"]


def personas() -> dict[str, Any]:
    tenant = TenantFactory(slug="acme")
    requester = UserFactory(username="rita")
    MembershipFactory(tenant=tenant, user=requester, role=Role.DEPLOYER)
    make_approval(tenant=tenant, actor=requester)
    DeadLetterFactory(
        execution=ExecutionFactory(tenant=tenant, actor=requester, status=ExecutionStatus.FAILED)
    )
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    boss = UserFactory(username="boss", is_staff=True)
    for user in (root, boss):
        MembershipFactory(tenant=tenant, user=user, role=Role.ADMIN)
    return {"superuser": root, "tenant admin": boss}


def client_for(user: Any) -> Client:
    client = Client()  # raises what a view raises: a 500 fails the test with its traceback
    client.force_login(user)
    return client


def changelists(user: Any) -> list[tuple[str, Any, list[str], list[str]]]:
    """(url, model admin, filter parameters, actions) of every changelist ``user`` may open."""
    out = []
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        request = RequestFactory().get(url)
        request.user = user
        if not model_admin.has_view_or_change_permission(request):
            continue
        changelist = model_admin.get_changelist_instance(request)
        parameters = [p for spec in changelist.filter_specs for p in spec.expected_parameters()]
        out.append((url, model_admin, parameters, list(model_admin.get_actions(request))))
    return out


@pytest.mark.parametrize("persona", ["superuser", "tenant admin"])
def test_the_red_team_requests_are_no_500(persona: str) -> None:
    client = client_for(personas()[persona])
    changelist = "/admin/approvals/approval/"
    for query in ("?state__exact=bogus", "?state=bogus"):
        answer = client.get(changelist + query)
        assert (answer.status_code, answer["Location"]) == (302, changelist + "?e=1"), query
    form = {"action": "approve_selected", ACTION_CHECKBOX_NAME: ["abc"], "index": 0}
    answer = client.post(changelist, form)
    assert answer.status_code == 400
    assert "'abc' is no approval id" in answer.content.decode()
    assert client.get(changelist + "?state=approved").status_code == 200  # a good value still filters


@pytest.mark.parametrize("persona", ["superuser", "tenant admin"])
def test_every_changelist_refuses_bad_filters_and_selections(persona: str) -> None:
    user = personas()[persona]
    client = client_for(user)
    walked = changelists(user)
    assert {url for url, *_ in walked} >= {"/admin/execution/execution/", "/admin/approvals/approval/"}
    for url, model_admin, parameters, actions in walked:
        for parameter in parameters:
            answer = client.get(url, {parameter: "no-such-value"})
            assert answer.status_code in (200, 302, 400), (
                f"{url}?{parameter}=no-such-value: {answer.status_code}"
            )
            if answer.status_code == 302:
                assert answer["Location"] == url + "?e=1"
        if model_admin.date_hierarchy:
            answer = client.get(url, {f"{model_admin.date_hierarchy}__year": "99999999999999999999"})
            assert (answer.status_code, answer["Location"]) == (302, url + "?e=1")
        # A text primary key (django-q2's task ids) takes any string: those rows just do not exist.
        text_key = model_admin.model._meta.pk.get_internal_type() in ("CharField", "TextField")
        for action in actions:
            for confirm in ({}, {"confirm": "yes"}):
                form = {"action": action, ACTION_CHECKBOX_NAME: BAD_KEYS, "index": 0, **confirm}
                answer = client.post(url, form)
                expected = (200, 302) if text_key else (400,)
                assert answer.status_code in expected, f"{url} action {action}: {answer.status_code}"
