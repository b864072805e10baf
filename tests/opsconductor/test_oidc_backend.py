"""The OIDC backend's account rules without a browser (the browser test covers the flow):
an account is found by (issuer, subject) only, created with a checked, free user name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from execution.enums import Role
from execution.models import AuditLog, Membership, OidcIdentity
from opsconductor import oidc
from tests.factories import TenantFactory, UserFactory

ISSUER = "https://idp.example.test"


@pytest.fixture
def backend(settings: Any, db: Any) -> Iterator[oidc.OidcBackend]:
    settings.OIDC_ISSUER = ISSUER
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "client", "secret"
    # A discovery document as the provider would serve it (no network in this test).
    oidc._discovered.update(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        userinfo_endpoint=f"{ISSUER}/userinfo",
        jwks_uri=f"{ISSUER}/jwks",
        end_session_endpoint=f"{ISSUER}/logout",
    )
    yield oidc.OidcBackend()
    oidc._discovered.clear()


def test_a_first_login_creates_the_account_and_its_memberships(backend: oidc.OidcBackend) -> None:
    TenantFactory(slug="acme")
    claims = {
        "sub": "s-1",
        "preferred_username": "jane.doe",
        "email": "jane@x.test",
        "groups": ["ops:acme:viewer"],
    }
    assert backend.get_settings("OIDC_OP_TOKEN_ENDPOINT") == f"{ISSUER}/token"
    user = backend.create_user(claims)
    assert user.username == "jane.doe" and not user.has_usable_password()
    assert list(backend.filter_users_by_claims(claims)) == [user]
    assert list(backend.filter_users_by_claims({**claims, "sub": "s-2"})) == []
    assert Membership.objects.get(user=user).role == Role.VIEWER
    assert OidcIdentity.objects.get(user=user).issuer == ISSUER


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("taken", "exists already"),
        ("<script>", "letters, digits"),
        ("x" * 151, "at most 150"),
        ("", "required"),
    ],
)
def test_a_name_django_refuses_or_a_local_account_has_is_no_login(
    backend: oidc.OidcBackend, name: str, why: str
) -> None:
    UserFactory(username="taken")
    assert backend.create_user({"sub": "s-9", "preferred_username": name}) is None
    assert why in AuditLog.objects.get(event_type="oidc_login_refused").reason
    assert not OidcIdentity.objects.exists()


def test_logout_url_of_an_sso_session_is_the_providers(backend: oidc.OidcBackend, rf: Any) -> None:
    from django.contrib.sessions.backends.db import SessionStore

    request = rf.post("/accounts/logout/")
    request.session = SessionStore()
    assert oidc.provider_logout_url(request) == "/accounts/login/"  # a local session
    request.session["oidc_id_token"] = "t.o.k"
    url = oidc.provider_logout_url(request)
    assert url.startswith(f"{ISSUER}/logout?id_token_hint=t.o.k&post_logout_redirect_uri=http")
