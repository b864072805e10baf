"""OpenID Connect login (mozilla-django-oidc), on only when ``OIDC_ISSUER`` is set (docs/oidc.md).

- The provider's endpoints come from its discovery document (``<issuer>/.well-known/
  openid-configuration``, fetched once per process and checked to name the same issuer).
- A person is their provider's (issuer, ``sub``), linked to one account (``OidcIdentity``);
  never matched by e-mail or user name, so a claim cannot take over a local account (the
  break-glass ones among them). The first login creates the account with the name of
  ``OIDC_USERNAME_CLAIM``, which must pass Django's username rules and be free.
- At each login the ``OIDC_ROLES_CLAIM`` values that match ``OIDC_ROLES_PATTERN`` are the
  person's memberships: added, changed and removed through the members service (each change
  audited there), summed up in one ``oidc_login`` audit row (opsconductor/oidc_roles.py).
- Logging out of an SSO session logs out at the provider too (its ``end_session_endpoint``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import absolutify, import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from execution.models import AuditLog
from execution.models.identity import OidcIdentity
from execution.services.users import UserRefused, user_create
from opsconductor.oidc_roles import oidc_memberships_sync

logger = logging.getLogger(__name__)
_ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_discovered: dict[str, Any] = {}
_lock = threading.Lock()


class DiscoveryFailed(Exception):
    pass


def discovery() -> dict[str, Any]:
    """The provider's discovery document, fetched once per process."""
    with _lock:
        if not _discovered:
            issuer = str(settings.OIDC_ISSUER).rstrip("/")
            url = f"{issuer}/.well-known/openid-configuration"
            try:
                document = requests.get(url, timeout=settings.OIDC_TIMEOUT_SECONDS).json()
            except (requests.RequestException, ValueError) as exc:
                raise DiscoveryFailed(f"OIDC discovery at {url}: {type(exc).__name__}") from None
            if str(document.get("issuer", "")).rstrip("/") != issuer:
                raise DiscoveryFailed(f"OIDC discovery at {url} names issuer {document.get('issuer')!r}")
            _discovered.update(document)
        return dict(_discovered)


def _get_settings(attr: str, *args: Any) -> Any:
    if attr in _ENDPOINTS:
        return discovery()[_ENDPOINTS[attr]]
    return import_from_settings(attr, *args)


class OidcAuthenticateView(OIDCAuthenticationRequestView):
    """The redirect to the provider's authorization endpoint (from discovery)."""

    get_settings = staticmethod(_get_settings)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.discovery_failed = ""
        try:
            super().__init__(*args, **kwargs)
        except DiscoveryFailed as failed:  # the provider is away: say so on the login page
            self.discovery_failed = str(failed)

    def get(self, request: HttpRequest) -> HttpResponse:
        if self.discovery_failed:
            logger.warning("single sign-on unavailable: %s", self.discovery_failed)
            return HttpResponseRedirect(settings.LOGIN_REDIRECT_URL_FAILURE)
        return super().get(request)  # type: ignore[no-any-return]


class OidcBackend(OIDCAuthenticationBackend):
    get_settings = staticmethod(_get_settings)

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        # The ID token's claims and the userinfo endpoint's together: providers put groups in
        # one or the other.
        return {**payload, **super().get_userinfo(access_token, id_token, payload)}

    def retrieve_matching_jwk(self, token: Any) -> Any:
        """The signing key; a token without ``kid`` is accepted only when the provider
        publishes exactly one key (RFC 7517 lets a lone key go unnamed)."""
        if "kid" in jwt.get_unverified_header(token):
            return super().retrieve_matching_jwk(token)
        response = requests.get(self.OIDC_OP_JWKS_ENDPOINT, timeout=settings.OIDC_TIMEOUT_SECONDS)
        response.raise_for_status()
        keys = response.json().get("keys", [])
        if len(keys) != 1:
            raise SuspiciousOperation("the ID token names no key (kid) and the provider has several")
        return jwt.PyJWK(keys[0])

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        issuer = str(settings.OIDC_ISSUER).rstrip("/")
        return self.UserModel.objects.filter(
            oidc_identity__issuer=issuer, oidc_identity__subject=str(claims["sub"])
        )

    @transaction.atomic
    def create_user(self, claims: dict[str, Any]) -> Any:
        issuer = str(settings.OIDC_ISSUER).rstrip("/")
        username = str(claims.get(settings.OIDC_USERNAME_CLAIM) or "")
        try:
            user = user_create(username=username, password=None, email=str(claims.get("email") or ""))
        except UserRefused as refused:
            # A name Django refuses, or one a local account has: no login, and a record of why.
            AuditLog.objects.create(
                event_type="oidc_login_refused",
                reason=str(refused),
                details={
                    "issuer": issuer,
                    "subject": str(claims["sub"]),
                    "claim": settings.OIDC_USERNAME_CLAIM,
                },
            )
            logger.warning("OIDC login of %s refused: %s", claims["sub"], refused)
            return None
        OidcIdentity.objects.create(user=user, issuer=issuer, subject=str(claims["sub"]))
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        email = str(claims.get("email") or "")
        if email and email != user.email:
            user.email = email
            user.save(update_fields=["email"])
        oidc_memberships_sync(user=user, claims=claims, issuer=str(settings.OIDC_ISSUER).rstrip("/"))
        return user


def provider_logout_url(request: HttpRequest) -> str:
    """Where logging out sends the browser (``OIDC_OP_LOGOUT_URL_METHOD``): the provider's
    end of session for an SSO login, the login page for a local one."""
    login = absolutify(request, settings.LOGOUT_REDIRECT_URL)
    id_token = request.session.get("oidc_id_token")
    try:
        end_session = discovery().get("end_session_endpoint") if id_token else None
    except DiscoveryFailed as failed:  # the provider is away: the local session still ends
        logger.warning("logout at the provider skipped: %s", failed)
        end_session = None
    if not end_session:
        return str(settings.LOGOUT_REDIRECT_URL)
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": login})
    return f"{end_session}?{query}"
