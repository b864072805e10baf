"""``manage.py submit``, ``executions`` and ``api_token``."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from execution.models import ApiToken, Execution
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


def test_api_token_prints_a_new_key_stored_hashed(operator: Any) -> None:
    first = _run("api_token", operator.username).strip()
    stored = ApiToken.objects.get(user=operator)
    # The database holds the key's hash, never the key the client sends.
    assert stored.key_hash == token_hash(first) and first not in stored.key_hash
    rotated = _run("api_token", operator.username).strip()
    assert rotated != first
    assert list(ApiToken.objects.filter(user=operator).values_list("key_hash", flat=True)) == [
        token_hash(rotated)
    ]
