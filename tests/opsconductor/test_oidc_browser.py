"""Single sign-on against a real OpenID Connect provider (oidc-provider-mock, a Flask app on a
loopback thread) through a real browser (Playwright + Debian's chromium) and a live daphne:
claims become memberships, a group removed at the provider is a membership lost at the next
login, logout ends the session at the provider, local accounts keep working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from oidc_provider_mock import run_server_in_thread

from execution.enums import Role
from execution.models import AuditLog, Membership, OidcIdentity
from tests.execution.realtime.live import daphne_server
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.support.processes import subprocess_env

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _memberships(username: str) -> dict[str, str]:
    return dict(Membership.objects.filter(user__username=username).values_list("tenant__slug", "role"))


def _sso_login(page: Any, base: str, subject: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.click("#sso-login")
    page.fill("input[name=sub]", subject)
    page.click("button:has-text('Authorize')")
    page.wait_for_url(f"{base}/", timeout=30000)


def _logout(page: Any, base: str) -> None:
    page.click("button:has-text('Log out')")


def test_claims_map_to_memberships_at_every_login(page: Any, tmp_path: Path) -> None:
    acme, other = TenantFactory(slug="acme"), TenantFactory(slug="other")
    keeper = UserFactory(username="local-admin")
    # Hashed as daphne's settings verify it (the test process has only the fast MD5 hasher).
    keeper.password = PBKDF2PasswordHasher().encode("break-glass-password", "break-glass-salt")
    keeper.save()
    MembershipFactory(tenant=acme, user=keeper, role=Role.ADMIN)
    MembershipFactory(tenant=other, user=UserFactory(username="other-admin"), role=Role.ADMIN)
    with run_server_in_thread() as provider:
        issuer = f"http://localhost:{provider.server_port}"

        def claims(subject: str, **values: Any) -> None:
            requests.put(f"{issuer}/users/{subject}", json=values, timeout=10).raise_for_status()

        claims(
            "jane-sub",
            preferred_username="jane.doe",
            email="jane@example.test",
            groups=[
                "ops:acme:operator",
                "ops:other:viewer",
                "ops:other:approver",
                "ops:nowhere:admin",
                "staff",
            ],
        )
        env = subprocess_env(
            OIDC_ISSUER=issuer, OIDC_CLIENT_ID="opsconductor", OIDC_CLIENT_SECRET="client-secret-for-tests"
        )
        with daphne_server(env, tmp_path / "daphne.log") as port:
            base = f"http://127.0.0.1:{port}"

            # First login: the account is created from the claims, with the mapped roles
            # (two roles in one tenant: the stronger one).
            _sso_login(page, base, "jane-sub")
            assert "jane.doe" in page.content()
            assert _memberships("jane.doe") == {"acme": "operator", "other": "approver"}
            assert OidcIdentity.objects.get(user__username="jane.doe").subject == "jane-sub"
            login = AuditLog.objects.filter(event_type="oidc_login").latest("id")
            assert login.details["added"] == {"acme": "operator", "other": "approver"}
            assert login.details["unknown_tenants"] == ["nowhere"] and login.details["ignored"] == ["staff"]
            assert AuditLog.objects.filter(event_type="member_added", details__user="jane.doe").count() == 2

            # The groups change at the provider; logging out ends the session there too.
            claims("jane-sub", preferred_username="jane.doe", groups=["ops:acme:approver"])
            _logout(page, base)
            page.wait_for_url(f"{issuer}/oauth2/end_session**", timeout=30000)
            assert "id_token_hint" in page.url
            page.click("button:has-text('End session')")
            page.wait_for_url(f"{base}/accounts/login/", timeout=30000)

            # Next login: the removed group is a lost membership, the changed one a new role.
            _sso_login(page, base, "jane-sub")
            assert _memberships("jane.doe") == {"acme": "approver"}
            again = AuditLog.objects.filter(event_type="oidc_login").latest("id")
            assert again.details["changed"] == {"acme": "approver"} and again.details["removed"] == ["other"]
            assert OidcIdentity.objects.count() == 1  # the same account

            # A claim naming a local account's user name does not take it over.
            claims("mallory-sub", preferred_username="local-admin", groups=["ops:acme:admin"])
            _logout(page, base)
            page.click("button:has-text('End session')")
            page.wait_for_url(f"{base}/accounts/login/", timeout=30000)
            page.click("#sso-login")
            page.fill("input[name=sub]", "mallory-sub")
            page.click("button:has-text('Authorize')")
            page.wait_for_url(f"{base}/accounts/login/?sso=failed", timeout=30000)
            assert "Single sign-on did not log you in" in page.content()
            refused = AuditLog.objects.get(event_type="oidc_login_refused")
            assert "exists already" in refused.reason and refused.details["subject"] == "mallory-sub"
            # A name Django's rules refuse is refused the same way.
            claims("odd-sub", preferred_username="<b>odd name</b>", groups=["ops:acme:viewer"])
            page.click("#sso-login")
            page.fill("input[name=sub]", "odd-sub")
            page.click("button:has-text('Authorize')")
            page.wait_for_url(f"{base}/accounts/login/?sso=failed", timeout=30000)
            assert AuditLog.objects.filter(event_type="oidc_login_refused").count() == 2
            assert _memberships("local-admin") == {"acme": "admin"}

            # Break-glass: the local account logs in with its password, SSO or not.
            page.fill("#id_username", "local-admin")
            page.fill("#id_password", "break-glass-password")
            page.click("button:has-text('Log in')")
            page.wait_for_url(f"{base}/", timeout=30000)
            assert "local-admin" in page.content()
