"""The monitoring charts and the approval pages at a phone's width (390 px), in dark and
light mode: nothing scrolls sideways, neither the page nor a box inside it, and the charts
fit with text one can read (at least 9.5 px, tick labels apart).

Debian's chromium (Playwright) against Django's live server.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from approvals.services.vote import approval_vote
from execution.enums import ExecutionStatus, Role
from tests.approvals.conftest import make_approval, member
from tests.factories import ExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTH = 390

# Boxes of the page that scroll sideways by themselves (a table in its .table-wrap).
SIDEWAYS = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
  .map(e => e.tagName + '.' + e.className + ' ' + e.scrollWidth + '>' + e.clientWidth)"""

# Every chart: its box (and its figure's), the smallest text as shown, and whether two tick
# labels of its x axis overlap.
CHARTS = """() => [...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.getBoundingClientRect(), figure = svg.closest('figure') || svg;
  const scale = box.width / svg.viewBox.baseVal.width;
  const sizes = [...svg.querySelectorAll('text')].map(t => parseFloat(t.getAttribute('font-size')) * scale);
  const ticks = [...svg.querySelectorAll('text.tick')].map(t => t.getBoundingClientRect());
  const overlap = ticks.some((r, i) => i > 0 && r.left < ticks[i - 1].right);
  const outer = figure.getBoundingClientRect();
  return {left: Math.min(box.left, outer.left), right: Math.max(box.right, outer.right),
          smallest: Math.min(...sizes), overlap: overlap};
})"""


def _context(browser: Any, live_server: Any, user: Any, scheme: str) -> Any:
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": WIDTH, "height": 844}, color_scheme=scheme)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return context


def _page_fits(page: Any, path: str) -> None:
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= page.evaluate("innerWidth"), (path, width)
    assert page.evaluate(SIDEWAYS) == [], path


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_monitoring_charts_fit_a_phone_and_can_be_read(
    live_server: Any, browser: Any, tenant: Any, scheme: str
) -> None:
    admin = member(tenant, "ann-admin", Role.ADMIN)
    for status in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.RUNNING):
        ExecutionFactory(tenant=tenant, actor=admin, status=status)
    context = _context(browser, live_server, admin, scheme)
    page = context.new_page()
    try:
        page.goto(live_server.url + "/monitoring/")
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= page.evaluate("innerWidth") == WIDTH, width
        charts = page.evaluate(CHARTS)
        assert len(charts) == 3
        for chart in charts:
            assert chart["left"] >= 0 and chart["right"] <= WIDTH, chart
            assert chart["smallest"] >= 9.5, chart
            assert not chart["overlap"], chart
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_approval_list_and_page_do_not_scroll_sideways_on_a_phone(
    live_server: Any, browser: Any, tenant: Any, scheme: str
) -> None:
    requester = member(tenant, "rita-requester", Role.DEPLOYER)
    approver = member(tenant, "anton-approver", Role.APPROVER)
    other = member(tenant, "olga-approver", Role.APPROVER)
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    make_approval(tenant=tenant, actor=requester, level=1)
    approval_vote(approval=approval, voter=other, decision="approve", comment="looks right to me, go ahead")
    context = _context(browser, live_server, approver, scheme)
    page = context.new_page()
    try:
        for path in ("/approvals/", f"/approvals/{approval.approval_id}/"):
            page.goto(live_server.url + path)
            _page_fits(page, path)
        page.goto(live_server.url + "/approvals/")
        # Every fact of a row is still there, named by its column's label.
        row = page.locator(f'tr[data-approval="{approval.approval_id}"]')
        labels = row.evaluate(
            "tr => [...tr.querySelectorAll('td')].map(td => getComputedStyle(td, '::before').content)"
        )
        for label in ("Tenant", "Environment", "Action class", "Requester", "Votes", "Time left"):
            assert f'"{label}: "' in labels, (label, labels)
        assert "1 of 2" in row.inner_text() and "rita-requester" in row.inner_text()
    finally:
        context.close()
