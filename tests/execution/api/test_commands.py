"""``manage.py submit``, ``executions`` and ``api_token``."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from execution.models import ApiToken, AuditLog, Execution
from execution.services.tokens import token_hash
from tests.execution.api.conftest import noop_body

pytestmark = pytest.mark.django_db


def _run(*args: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_submit_then_replay_then_list_and_show(tmp_path: Path, operator: Any) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(noop_body()["plan"]))  # a bare plan, level 0
    first = _run("submit", str(plan_file), "--tenant", "acme", "--user", operator.username)
    assert first.startswith("submitted ") and "status=queued" in first
    again = _run("submit", str(plan_file), "--tenant", "acme", "--user", operator.username)
    assert again.startswith("replayed ")
    execution = Execution.objects.get()
    listing = _run("executions", "list", "--tenant", "acme")
    assert str(execution.execution_id) in listing and "1 execution(s)" in listing
    shown = _run("executions", "show", str(execution.execution_id))
    assert "queued" in shown and "[0] nothing" in shown
    data = json.loads(_run("executions", "show", str(execution.execution_id), "--json"))
    assert data["execution_id"] == str(execution.execution_id)


def test_submit_reports_problems_and_denials(tmp_path: Path, operator: Any, viewer: Any) -> None:
    plan_file = tmp_path / "plan.json"
    body = noop_body()
    body["plan"]["steps"][0]["type"] = "teleport"
    plan_file.write_text(json.dumps(body))
    with pytest.raises(CommandError, match=r"plan.steps\[0\].type"):
        _run("submit", str(plan_file), "--user", operator.username)
    plan_file.write_text(json.dumps(noop_body()))
    with pytest.raises(CommandError, match="permission denied"):
        _run("submit", str(plan_file), "--user", viewer.username)
    assert Execution.objects.count() == 0


def test_submit_with_a_key_held_by_another_plan_exits_naming_the_holder(
    tmp_path: Path, operator: Any
) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(noop_body(name="one")))
    key = ("--idempotency-key", "change-4711")
    first = _run("submit", str(plan_file), "--user", operator.username, *key)
    assert first.startswith("submitted ")
    assert _run("submit", str(plan_file), "--user", operator.username, *key).startswith("replayed ")
    plan_file.write_text(json.dumps(noop_body(name="two")))
    holder = Execution.objects.get()
    with pytest.raises(CommandError, match=f"held by execution {holder.execution_id}"):
        _run("submit", str(plan_file), "--user", operator.username, *key)
    assert Execution.objects.count() == 1


def test_api_token_prints_a_new_key_bound_to_the_tenant_and_stored_hashed(operator: Any) -> None:
    first = _run("api_token", operator.username, "--tenant", "acme", "--name", "ci").strip()
    stored = ApiToken.objects.get(user=operator)
    # The database holds the key's hash, never the key the client sends.
    assert stored.key_hash == token_hash(first) and first not in stored.key_hash
    assert (stored.tenant.slug, stored.name, stored.expires_at, stored.created_by) == (
        "acme",
        "ci",
        None,
        None,
    )
    with pytest.raises(CommandError, match=r"^--name: .* already \(--rotate replaces it\)$"):
        _run("api_token", operator.username, "--tenant", "acme", "--name", "ci")
    rotated = _run("api_token", operator.username, "--tenant", "acme", "--name", "ci", "--rotate").strip()
    assert rotated != first
    assert list(ApiToken.objects.filter(user=operator).values_list("key_hash", flat=True)) == [
        token_hash(rotated)
    ]
    second = _run("api_token", operator.username, "--tenant", "acme", "--name", "cron", "--expires", "30d")
    assert ApiToken.objects.filter(user=operator).count() == 2
    expiry = ApiToken.objects.get(key_hash=token_hash(second.strip())).expires_at
    assert expiry is not None and 29 < (expiry - timezone.now()).total_seconds() / 86400 <= 30
    audit = AuditLog.objects.filter(event_type="token_issued").order_by("id")
    assert [(a.details["token"], a.details["door"], a.actor) for a in audit] == [
        ("ci", "command", None),
        ("ci", "command", None),
        ("cron", "command", None),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nowhere", "--name", "x"], "no tenant 'nowhere'"),
        (["--tenant", "other", "--name", "x"], "--tenant: 'olga-operator' is not a member of tenant 'other'"),
        (["--tenant", "acme", "--name", "x", "--expires", "soonish"], "--expires: 'soonish' is not"),
        (["--tenant", "acme", "--name", "x", "--expires", "2001-01-01"], "--expires: must be in the future"),
        (["--tenant", "acme", "--name", "two\nlines"], "--name: printable characters only"),
        (["--tenant", "acme", "--name", "   "], "--name: a name is required"),
    ],
)
def test_api_token_refuses_with_a_one_line_reason_and_issues_nothing(
    operator: Any, other_tenant: Any, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as refused:
        _run("api_token", operator.username, *args)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    assert not ApiToken.objects.exists()
