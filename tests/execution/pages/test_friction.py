"""Friction an operator met: the header links only where the user may go, a
refused page is a page (and one log line, no traceback), a favicon, "deliveries"."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from execution.enums import Role
from monitoring.notifications.models import NotificationDelivery
from tests.approvals.conftest import member

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_only_those_who_manage_notifications_see_the_link(tenant: Any) -> None:
    for role in (Role.VIEWER, Role.OPERATOR, Role.APPROVER, Role.DEPLOYER):
        page = _client(member(tenant, f"someone-{role}", role)).get("/").content.decode()
        assert 'href="/notifications/"' not in page, role
    assert (
        'href="/notifications/"' in _client(member(tenant, "ann-admin", Role.ADMIN)).get("/").content.decode()
    )


def test_a_refused_page_is_a_styled_page_and_one_log_line_without_a_traceback(
    tenant: Any, caplog: pytest.LogCaptureFixture
) -> None:
    viewer = member(tenant, "vic-viewer", Role.VIEWER)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        answer = _client(viewer).get("/notifications/")
    assert answer.status_code == 403
    body = answer.content.decode()
    assert "console.css" in body and 'href="/executions/"' in body  # the site's page, not a bare 403
    assert "Not allowed" in body and "role &#x27;viewer&#x27;" in body  # the policy's reason
    refusals = [r for r in caplog.records if r.name == "django.request"]
    assert refusals and all(r.exc_info is None and r.exc_text is None for r in refusals)
    assert all("Traceback" not in caplog.text for _ in refusals)


def test_pages_have_a_favicon(tenant: Any) -> None:
    page = _client(member(tenant, "vic-viewer", Role.VIEWER)).get("/").content.decode()
    assert 'rel="icon"' in page and "execution/favicon.svg" in page
    assert finders.find("execution/favicon.svg")


def test_deliveries_are_spelled_so_in_the_admin() -> None:
    assert NotificationDelivery._meta.verbose_name_plural == "notification deliveries"
