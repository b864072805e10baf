"""Runbooks in the Django admin: a tenant admin adds one (version 1), a changed template
adds a version, an unchanged save adds none, a bad template is refused on its field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from execution.runbooks.models import Runbook
from tests.execution.runbooks.conftest import HEALTH_PARAMETERS, HEALTH_PLAN

pytestmark = pytest.mark.django_db
URL = "/admin/execution/runbook/"


def _client(user: Any) -> Client:
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def _form(tenant: Any, **changes: Any) -> dict[str, Any]:
    form = {
        "tenant": str(tenant.pk),
        "slug": "health",
        "name": "Health",
        "description": "",
        "tags": "[]",
        "parameters": json.dumps(HEALTH_PARAMETERS),
        "plan": json.dumps(HEALTH_PLAN),
        "min_approval_level": "0",
    }
    form.update(changes)
    return form


def test_add_change_and_refuse_in_the_admin(tenant: Any, tenant_admin: Any, web_hosts: Any) -> None:
    client = _client(tenant_admin)
    assert client.post(f"{URL}add/", _form(tenant)).status_code == 302
    runbook = Runbook.objects.get()
    assert runbook.owner == tenant_admin and [v.number for v in runbook.versions.all()] == [1]
    change = f"{URL}{runbook.pk}/change/"
    assert client.post(change, _form(tenant, name="Health!")).status_code == 302
    assert runbook.versions.count() == 1  # the template did not change
    assert client.post(change, _form(tenant, min_approval_level="1")).status_code == 302
    assert [(v.number, v.min_approval_level) for v in runbook.versions.all()] == [(2, 1), (1, 0)]
    bad = client.post(change, _form(tenant, plan=json.dumps({**HEALTH_PLAN, "name": "{{ params.nope }}"})))
    assert bad.status_code == 200
    assert "plan.name" in str(bad.context["adminform"].form.errors["plan"])
    assert runbook.versions.count() == 2
    page = client.get(change).content.decode()
    assert "v2" in page and "history with diffs" in page


def test_an_operator_cannot_edit_in_the_admin(tenant: Any, operator: Any, health: Runbook) -> None:
    client = _client(operator)
    assert client.get(URL).status_code == 403
    assert client.post(f"{URL}{health.pk}/change/", _form(tenant, min_approval_level="1")).status_code in (
        403,
        404,
    )
    assert health.versions.count() == 1
