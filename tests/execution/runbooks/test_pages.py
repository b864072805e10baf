"""The console's runbook pages: the form generated from the schema, the preview (plan, hash,
approval level), the launch, the version history with diffs, and the execution page's way
back (link, Run again with the form filled in)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from execution.models import AuditLog, Execution
from execution.runbooks.models import Runbook
from execution.runbooks.services import runbook_version_add
from tests.execution.api.conftest import client_for
from tests.execution.runbooks.conftest import HEALTH_PARAMETERS, HEALTH_PLAN

pytestmark = pytest.mark.django_db
PAGE = "/runbooks/acme/health/"


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_form_comes_from_the_schema(operator: Any, health: Runbook) -> None:
    client = _browser(operator)
    listing = client.get("/runbooks/").content.decode()
    assert PAGE in listing
    page = client.get(PAGE)
    fields = {f["name"]: f for f in page.context["fields"]}
    assert fields["host"]["choices"] == ["web-1", "web-2"]  # choices_from: the web hosts only
    assert fields["mode"]["choices"] == ["quick", "full"]
    assert fields["tries"]["type"] == "integer" and fields["tries"]["maximum"] == 5
    html = page.content.decode()
    assert 'name="p_host"' in html and 'id="launch-button"' in html


def test_preview_shows_the_plan_hash_and_level_a_launch_gets(
    tenant: Any, operator: Any, health: Runbook
) -> None:
    client = _browser(operator)
    preview = client.get(PAGE, {"preview": "1", "p_host": "web-2", "p_tries": "3", "p_verbose": "true"})
    assert preview.status_code == 200
    shown = preview.context["preview"]
    assert shown.approval_level == 0 and shown.rendered.normal["name"] == "health of web-2"
    assert Execution.objects.count() == 0  # a preview submits nothing
    launched = client.post(f"{PAGE}launch/", {"p_host": "web-2", "p_tries": "3", "p_verbose": "true"})
    assert launched.status_code == 302
    execution = Execution.objects.get()
    assert launched["Location"] == f"/executions/{execution.execution_id}/"
    assert execution.plan_hash == shown.rendered.plan_hash
    assert execution.runbook["params"]["tries"] == 3
    # the same values over REST by another operator: the same plan and hash
    from tests.factories import MembershipFactory, UserFactory

    other = UserFactory(username="op-2")
    MembershipFactory(tenant=tenant, user=other, role="operator")
    rest = client_for(other).post(
        "/api/v1/runbooks/health/launch/",
        {"tenant": "acme", "params": {"host": "web-2", "tries": 3, "verbose": True}},
        format="json",
    )
    assert rest.json()["plan_hash"] == execution.plan_hash


def test_the_form_posts_its_preview_and_keeps_the_csrf_token_out_of_urls(
    operator: Any, health: Runbook
) -> None:
    """The form's method is POST (its Preview and Launch buttons both post): a GET form put
    the CSRF token in the preview's URL, so into the browser history, logs and Referer."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    html = client.get(PAGE).content.decode()
    assert '<form method="post"' in html and 'id="runbook-form"' in html
    token = client.cookies["csrftoken"].value
    posted = client.post(
        PAGE,
        {"csrfmiddlewaretoken": token, "preview": "1", "p_host": "web-2", "p_tries": "3", "version": "1"},
    )
    assert posted.status_code == 200
    assert posted.context["preview"].rendered.normal["name"] == "health of web-2"
    assert Execution.objects.count() == 0  # a preview submits nothing
    refused = Client(enforce_csrf_checks=True)
    refused.force_login(operator)
    assert refused.post(PAGE, {"preview": "1", "p_host": "web-2"}).status_code == 403  # no token, no preview


def test_a_bad_value_is_a_400_naming_it(operator: Any, health: Runbook) -> None:
    answer = _browser(operator).post(f"{PAGE}launch/", {"p_host": "db-1", "p_tries": "9"})
    assert answer.status_code == 400
    assert set(answer.context["errors"]) == {"params.host", "params.tries"}
    assert 'data-error-for="tries"' in answer.content.decode()
    assert not Execution.objects.exists()


def test_a_viewer_is_refused_and_sees_no_launch_button(viewer: Any, health: Runbook) -> None:
    client = _browser(viewer)
    assert 'id="launch-button"' not in client.get(PAGE).content.decode()
    answer = client.post(f"{PAGE}launch/", {"p_host": "web-1"})
    assert answer.status_code == 403
    assert not Execution.objects.exists()
    assert AuditLog.objects.filter(actor=viewer, event_type="rbac_violation").exists()


def test_another_tenant_gets_a_404(outsider: Any, health: Runbook) -> None:
    client = _browser(outsider)
    assert client.get(PAGE).status_code == 404
    assert client.post(f"{PAGE}launch/", {"p_host": "web-1"}).status_code == 404


def test_history_shows_a_diff_between_versions(tenant_admin: Any, operator: Any, health: Runbook) -> None:
    plan = {**HEALTH_PLAN, "name": "health check of {{ params.host }}"}
    runbook_version_add(runbook=health, actor=tenant_admin, parameters=HEALTH_PARAMETERS, plan=plan)
    page = _browser(operator).get(PAGE)
    newest = page.context["history"][0]
    assert newest["version"].number == 2
    assert '-    "name": "health of {{ params.host }}",' in newest["diff"]
    assert '+    "name": "health check of {{ params.host }}",' in newest["diff"]


def test_the_execution_page_links_back_and_runs_again_through_the_form(
    operator: Any, health: Runbook
) -> None:
    client = _browser(operator)
    client.post(f"{PAGE}launch/", {"p_host": "web-2", "p_mode": "full"})
    execution = Execution.objects.get()
    page = client.get(f"/executions/{execution.execution_id}/").content.decode()
    assert f'href="{PAGE}?version=1"' in page
    again = f"{PAGE}?from={execution.execution_id}"
    assert f'href="{again}"' in page and 'id="run-again-form"' not in page
    form = client.get(again)
    values = {f["name"]: f["value"] for f in form.context["fields"]}
    assert values["host"] == "web-2" and values["mode"] == "full"
