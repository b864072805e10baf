"""``opsctl launch`` against the product (Django's live server on loopback, a real token):
the same rendered plan and hash as the REST door, a bad value named, a viewer refused."""

from __future__ import annotations

import io
from typing import Any

import pytest

from execution.models import Execution
from execution.runbooks.models import Runbook
from opsconductor.cli.main import main
from tests.execution.api.conftest import client_for
from tests.factories import MembershipFactory, UserFactory, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def _opsctl(url: str, user: Any, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(
        ["--url", url, "--token", token_for(user), "launch", "health", "--tenant", "acme", *args], out=out
    )
    return code, out.getvalue()


def test_opsctl_launches_the_same_plan_as_rest(live_server: Any, tenant: Any, health: Runbook) -> None:
    rest_user, cli_user = UserFactory(username="op-rest"), UserFactory(username="op-cli")
    for user in (rest_user, cli_user):
        MembershipFactory(tenant=tenant, user=user, role="operator")
    rest = client_for(rest_user).post(
        "/api/v1/runbooks/health/launch/",
        {"tenant": "acme", "params": {"host": "web-1", "tries": 2, "verbose": True}},
        format="json",
    )
    code, printed = _opsctl(
        live_server.url, cli_user, "-p", "host=web-1", "-p", "tries=2", "-p", "verbose=true"
    )
    assert code == 0, printed
    launched = Execution.objects.get(actor=cli_user)
    assert printed.startswith(f"execution {launched.execution_id}")
    assert launched.plan_hash == rest.json()["plan_hash"]
    assert launched.runbook == {
        "slug": "health",
        "version": 1,
        "params": rest.json()["params"],
        "author_id": launched.runbook["author_id"],
    }


def test_opsctl_names_a_bad_value_and_a_viewer_is_refused(
    live_server: Any, operator: Any, viewer: Any, health: Runbook, capsys: Any
) -> None:
    code, _ = _opsctl(live_server.url, operator, "-p", "host=db-1")
    assert code != 0 and "params.host" in capsys.readouterr().err
    code, _ = _opsctl(live_server.url, viewer, "-p", "host=web-1")
    refused = capsys.readouterr().err
    assert code != 0 and "viewer" in refused, refused
    assert not Execution.objects.exists()
