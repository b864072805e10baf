"""``manage.py demo``: idempotent, ``--json`` in exactly the shape of docs/contract.md#monitoring, example plans."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.test import RequestFactory

from execution.models import ApiToken, Asset, Membership, ReadOnlyCommandRule, Tenant
from execution.services.demo import DEMO_READ_ONLY_COMMANDS, demo_example_plans
from execution.services.tokens import token_hash

pytestmark = pytest.mark.django_db
ROLES = {
    "operator": ("demo", "operator"),
    "deployer": ("demo", "deployer"),
    "approver1": ("demo", "approver"),
    "approver2": ("demo", "approver"),
    "approver3": ("demo", "approver"),
    "viewer": ("demo", "viewer"),
    "admin": ("demo", "admin"),
    "outsider": ("other", "admin"),
}


def demo_json(*args: str) -> dict:  # type: ignore[type-arg]
    out = StringIO()
    call_command("demo", "--json", *args, stdout=out)
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


def test_demo_json_shape_and_idempotence() -> None:
    first = demo_json("--password", "demo-pass-1")
    second = demo_json("--password", "demo-pass-1")
    assert set(first) == {"tenants", "users", "assets"}
    assert first["tenants"] == ["demo", "other"]
    assert {name: (u["tenant"], u["role"]) for name, u in first["users"].items()} == ROLES
    for user in first["users"].values():
        assert set(user) == {"tenant", "role", "email", "password", "token"}
        assert user["password"] == "demo-pass-1"
    assert {name: u["email"] for name, u in first["users"].items()} == {
        name: f"{name}@example.com" for name in ROLES
    }
    assert sorted(a["hostname"] for a in first["assets"]) == ["local-1", "local-2", "local-3"]
    assert all(set(a) == {"id", "hostname"} for a in first["assets"])
    # Same rows and the same working tokens (nothing new created): the keys are stored
    # hashed, the demo remembers its own in the state directory, so serve's banner and
    # demo --json keep agreeing.
    assert second == first
    assert ApiToken.objects.count() == len(first["users"])
    # Each demo token is bound to its user's tenant (the outsider's to "other").
    for name, info in first["users"].items():
        token = ApiToken.objects.select_related("user", "tenant").get(key_hash=token_hash(info["token"]))
        assert (token.user.username, token.tenant.slug, token.name) == (name, info["tenant"], "demo")
    assert Tenant.objects.filter(slug__in=["demo", "other"]).count() == 2
    assert Membership.objects.count() == 8 and Asset.objects.count() == 3
    assert set(Asset.objects.values_list("connection_type", flat=True)) == {"local"}
    # The example plans' commands declared read are read in the demo tenant.
    assert ReadOnlyCommandRule.objects.filter(tenant__slug="demo").count() == 3
    # The login throttle (django-axes) needs the request authenticate() is called for.
    request = RequestFactory().post("/accounts/login/")
    assert authenticate(request, username="approver2", password="demo-pass-1") is not None


def test_generated_password_is_printed_with_the_example_plans() -> None:
    out = StringIO()
    call_command("demo", stdout=out)
    text = out.getvalue()
    assert "operator" in text and "password=" in text and "token=" in text
    for plan in demo_example_plans():
        assert str(plan) in text


def test_example_plans_target_the_demo_tenant_and_its_assets() -> None:
    plans = demo_example_plans()
    assert len(plans) >= 3
    environments = set()
    for path in plans:
        body = json.loads(path.read_text())
        assert body["tenant"] == "demo"
        plan = body["plan"]
        environments.add(plan["environment"])
        assert plan["name"] and plan["steps"]
        for step in plan["steps"]:
            assert {"name", "type"} <= set(step)
            if "target" in step:
                assert step["target"]["hostname"] in {"local-1", "local-2", "local-3"}
    assert environments == {"dev", "staging", "prod"}


def test_every_example_is_a_valid_submission_and_the_sla_drill_waits_in_the_queue() -> None:
    from execution.plans.schema import submission_validate
    from execution.services.classify import plan_classify

    modes = {}
    for path in demo_example_plans():
        inp = submission_validate(json.loads(path.read_text()))  # raises PlanInvalid with field paths
        modes[path.stem] = plan_classify(
            plan=inp.plan,
            requested_level=inp.approval_level or 0,
            sla_class=inp.sla_class,
            read_only_patterns=[pattern for pattern, _ in DEMO_READ_ONLY_COMMANDS],
        )
    assert modes["read-uptime"].action_class == "read"
    drill = modes["sla-drill"]
    # The drill's note promises a background item in the medium queue.
    assert (drill.execution_mode, drill.sla_class) == ("background", "medium")


def _password_is(username: str, password: str) -> bool:

    return bool(get_user_model().objects.get(username=username).check_password(password))


def test_a_plain_rerun_keeps_every_password(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_STATE_DIR", str(tmp_path))
    first = demo_json()
    password = first["users"]["operator"]["password"]
    again = demo_json()
    assert again["users"]["operator"]["password"] == password
    assert again["users"]["operator"]["token"] == first["users"]["operator"]["token"]
    assert _password_is("approver1", password)
    # serve seeds through the same function: its banner shows what demo --json shows.
    from execution.services.demo import demo_seed

    banner = demo_seed(password=None)
    assert {u["password"] for u in banner.users.values()} == {password}
    assert {n: u["token"] for n, u in banner.users.items()} == {
        n: u["token"] for n, u in again["users"].items()
    }
    assert _password_is("viewer", password)


def test_reset_passwords_and_password_change_them(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_STATE_DIR", str(tmp_path))
    old = demo_json()["users"]["admin"]["password"]
    new = demo_json("--reset-passwords")["users"]["admin"]["password"]
    assert new != old and _password_is("admin", new)
    assert not _password_is("admin", old)
    assert demo_json()["users"]["admin"]["password"] == new
    demo_json("--password", "chosen-one-1")
    assert _password_is("admin", "chosen-one-1")
    assert demo_json()["users"]["admin"]["password"] == "chosen-one-1"


def test_demo_approvers_have_addresses_an_approval_request_reaches() -> None:
    """The demo's approvers are whom an approval request is mailed to (never delivered:
    example.com); an address an admin changed survives a re-run."""
    from approvals.services.request import approval_request
    from monitoring.notifications.recipients import approval_voters
    from tests.factories import ExecutionFactory

    demo_json("--password", "demo-pass-1")
    user_model = get_user_model()
    user_model.objects.filter(username="approver3").update(email="approver3@corp.example")
    demo_json("--password", "demo-pass-1")
    assert user_model.objects.get(username="approver3").email == "approver3@corp.example"
    execution = ExecutionFactory(
        tenant=Tenant.objects.get(slug="demo"), actor=user_model.objects.get(username="operator")
    )
    approval_request(execution=execution, level=1)
    assert [u.email for u in approval_voters(execution=execution)] == [
        "admin@example.com",
        "approver1@example.com",
        "approver2@example.com",
        "approver3@corp.example",
    ]
