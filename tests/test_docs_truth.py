"""The docs say what the code does: values the docs quote are read from the code here.

(``demo --json``'s shape and the demo passwords after a reset: tests/monitoring/test_demo.py.)
"""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from monitoring.views import DASHBOARD_REFRESH_SECONDS

ROOT = Path(__file__).resolve().parents[1]


def _lines_about(path: str, needle: str) -> list[str]:
    return [line for line in (ROOT / path).read_text().splitlines() if needle in line]


@pytest.mark.django_db
def test_the_monitoring_refresh_interval_the_docs_quote_is_the_pages(tenant: Any, operator: Any) -> None:
    quoted = []
    for path in ("README.md", "docs/console.md", "docs/operations.md"):
        lines = [line for line in _lines_about(path, "/monitoring/") if re.search(r"every \d+ s\b", line)]
        assert lines, f"{path} no longer says how often /monitoring/ updates"
        quoted += [int(n) for line in lines for n in re.findall(r"every (\d+) s\b", line)]
    assert set(quoted) == {DASHBOARD_REFRESH_SECONDS}
    client = Client()
    client.force_login(operator)
    page = client.get("/monitoring/").content.decode()
    assert f"updates every {DASHBOARD_REFRESH_SECONDS} s" in page
    assert f'location.search, {DASHBOARD_REFRESH_SECONDS}, "refresh-status")' in page


@pytest.mark.django_db
def test_demo_json_has_the_fields_the_contract_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_STATE_DIR", str(tmp_path))
    text = " ".join((ROOT / "docs/contract.md").read_text().split())
    documented = text.split("`--json` prints `", 1)[1].split("`", 1)[0]
    # {"tenants": [...], "users": {"<name>": {"tenant": ..., ...}}, "assets": [{"id": ..., ...}]}
    top = re.findall(r'"(\w+)": [\[{]', documented)
    user_fields = re.findall(r'"(\w+)": \.\.\.', documented.split('"<name>": {', 1)[1].split("}", 1)[0])
    asset_fields = re.findall(r'"(\w+)": \.\.\.', documented.split('"assets": [{', 1)[1])
    out = StringIO()
    call_command("demo", "--json", stdout=out)
    seed = json.loads(out.getvalue())
    assert sorted(seed) == sorted(top) == ["assets", "tenants", "users"]
    assert {tuple(sorted(u)) for u in seed["users"].values()} == {tuple(sorted(user_fields))}
    assert {tuple(sorted(a)) for a in seed["assets"]} == {tuple(sorted(asset_fields))}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_readmes_websocket_urls_work_as_written(tmp_path: Path) -> None:
    """README "Live progress": a program follows an execution with ``?token=<key>&after=``."""
    from execution.enums import Role
    from execution.services.events import event_record
    from execution.services.tokens import api_token_issue
    from tests.execution.realtime.live import daphne_server, delivery_env, run_async, ws_collect
    from tests.factories import ExecutionFactory, MembershipFactory, TenantFactory, UserFactory

    tenant = TenantFactory(slug="acme")
    viewer = UserFactory(username="vic-viewer")
    MembershipFactory(tenant=tenant, user=viewer, role=Role.VIEWER)
    execution = ExecutionFactory(tenant=tenant, actor=viewer)
    first = event_record(execution=execution, event_type="created", to_status="pending_approval")
    event_record(execution=execution, event_type="approval_requested")
    key = api_token_issue(user=viewer, tenant=tenant, name="readme").key
    readme = (ROOT / "README.md").read_text()
    templates = re.findall(r"`(ws://HOST/ws/[^`]+)`", readme)
    assert len(templates) == 2, templates
    with daphne_server(delivery_env("bridge"), tmp_path / "daphne.log") as port:
        for template in templates:
            url = (
                template.replace("HOST", f"127.0.0.1:{port}")
                .replace("<execution_id>", str(execution.execution_id))
                .replace("<tenant>", tenant.slug)
                .replace("<key>", key)
                .replace("<event id>", str(first.pk))
            )
            events = run_async(ws_collect(url, max_events=1, timeout=20))
            assert [e["type"] for e in events] == ["approval_requested"], (template, events)
