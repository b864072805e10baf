"""The identity provider unreachable: the SSO button leads back to the login page saying so,
and logging out of an SSO session still ends the local one (no 500 either way)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from opsconductor import oidc
from tests.support.processes import free_port


@pytest.fixture
def provider_away(settings: Any) -> Iterator[None]:
    settings.OIDC_ISSUER = f"http://127.0.0.1:{free_port()}"
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "client", "secret"
    settings.OIDC_TIMEOUT_SECONDS = 2
    oidc._discovered.clear()
    yield
    oidc._discovered.clear()


def test_the_sso_button_returns_to_the_login_page(provider_away: None, settings: Any) -> None:
    response = oidc.OidcAuthenticateView.as_view()(RequestFactory().get("/oidc/authenticate/"))
    assert response.status_code == 302
    assert response["Location"] == settings.LOGIN_REDIRECT_URL_FAILURE == "/accounts/login/?sso=failed"


def test_logout_of_an_sso_session_still_ends_the_local_one(provider_away: None, db: Any) -> None:
    request = RequestFactory().post("/accounts/logout/")
    request.session = SessionStore()
    request.session["oidc_id_token"] = "header.payload.signature"
    assert oidc.provider_logout_url(request) == "/accounts/login/"
