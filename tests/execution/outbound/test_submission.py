"""A URL or probe host that can never pass the guard is a 400 at submission, naming the field,
and stores nothing (the guard decides the rest when the step runs)."""

from __future__ import annotations

from typing import Any

import pytest

from execution.models import Execution
from monitoring.notifications.forms import SubscriptionForm
from tests.execution.api.conftest import client_for

pytestmark = pytest.mark.django_db
URL = "/api/v1/executions/"


@pytest.mark.parametrize(
    ("params", "path", "why"),
    [
        ({"url": "http://2130706433/"}, "url", "numeric IPv4 form"),
        ({"url": "http://user:pw@api.example.com/"}, "url", "user information"),
        ({"url": "http://[fe80::1%25lo]/"}, "url", "zone id"),
    ],
)
def test_an_http_url_that_cannot_pass_the_guard_is_a_400(
    operator: Any, params: dict[str, Any], path: str, why: str
) -> None:
    body = {
        "tenant": "acme",
        "plan": {
            "name": "p",
            "environment": "dev",
            "steps": [{"name": "h", "type": "http", "params": params}],
        },
    }
    response = client_for(operator).post(URL, body, format="json")
    assert response.status_code == 400, response.content
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert why in errors[f"plan.steps[0].params.{path}"], errors
    assert not Execution.objects.exists()


def test_a_probe_host_that_is_not_one_host_is_a_400(operator: Any) -> None:
    step = {"name": "v", "type": "validate", "params": {"tcp": {"host": "a,/run/postgresql", "port": 5432}}}
    body = {"tenant": "acme", "plan": {"name": "p", "environment": "dev", "steps": [step]}}
    response = client_for(operator).post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert "plan.steps[0].params.tcp[0].host" in [e["path"] for e in response.json()["errors"]]


def test_a_webhook_subscription_reads_its_url_as_requests_does(tenant: Any) -> None:
    form = SubscriptionForm(
        data={
            "tenant": tenant.pk,
            "name": "hook",
            "kinds": ["failed"],
            "channel": "webhook",
            "destination": "http://0x7f.1:8000/hook",
            "environment": "",
            "is_active": "on",
        }
    )
    assert not form.is_valid()
    assert "numeric IPv4 form" in str(form.errors["destination"])
