"""Every page at a phone's width (390 px) in dark mode: nothing sticks out sideways.

Debian's chromium (Playwright) against Django's live server, logged in as a tenant admin of a
tenant with executions, an approval, a dead letter, alerts, members and a subscription.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from execution.enums import ExecutionStatus, Role
from monitoring.notifications.models import Channel, Kind
from tests.approvals.conftest import make_approval, member
from tests.factories import DeadLetterFactory, ExecutionFactory, ExecutionStepFactory
from tests.monitoring.notifications.helpers import subscribe

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTH = 390


def test_every_page_fits_a_phone_in_dark_mode(live_server: Any, browser: Any, tenant: Any) -> None:
    admin = member(tenant, "ann-admin-with-a-rather-long-user-name", Role.ADMIN)
    requester = member(tenant, "rita-requester", Role.DEPLOYER)
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    failed = ExecutionFactory(
        tenant=tenant, actor=requester, status=ExecutionStatus.FAILED, error_message="x" * 300
    )
    ExecutionStepFactory(execution=failed, step_index=0, step_name="a-step-with-a-long-name-" * 4)
    DeadLetterFactory(execution=failed)
    subscribe(
        tenant=tenant,
        kinds=[Kind.FAILED, Kind.TIMEOUT, Kind.APPROVAL_REQUESTED],
        channel=Channel.EMAIL,
        destination="oncall-with-a-long-address@example.test,second@example.test",
    )
    client = Client()
    client.force_login(admin)
    context = browser.new_context(viewport={"width": WIDTH, "height": 844}, color_scheme="dark")
    base = live_server.url
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}])
    page = context.new_page()
    try:
        for path in (
            "/",
            "/executions/",
            f"/executions/{failed.execution_id}/",
            f"/executions/{approval.execution.execution_id}/",
            "/approvals/",
            f"/approvals/{approval.approval_id}/",
            "/dlq/",
            "/audit/",
            "/monitoring/",
            "/notifications/",
            "/tenants/",
            f"/tenants/{tenant.slug}/members/",
            "/runbooks/",
        ):
            page.goto(base + path)
            assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), (path, background)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= WIDTH, (path, width)
    finally:
        context.close()
