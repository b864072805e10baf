"""Hardened authentication (docs/contract.md#hostile-input): login throttling on both login
forms, throttled token authentication, production settings clean under ``check --deploy``,
/metrics closed without its token in production, tokens stored hashed."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.test import Client

from execution.models import ApiToken
from tests.factories import UserFactory, token_for
from tests.support.processes import manage_argv, subprocess_env

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-42"


@pytest.fixture
def staff() -> Any:
    user = UserFactory(username="locked-out", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_eleventh_attempt_within_a_minute_is_refused_even_with_the_right_password(
    url: str, staff: Any
) -> None:
    client = Client()
    statuses = [
        client.post(url, {"username": "locked-out", "password": "wrong-password"}).status_code
        for _ in range(10)
    ]
    assert statuses[:9] == [200] * 9  # the form again, with its error; the 10th locks
    response = client.post(url, {"username": "locked-out", "password": PASSWORD})
    assert response.status_code == 429, response.status_code
    assert "_auth_user_id" not in client.session


def test_the_lock_is_per_account_from_any_address(staff: Any) -> None:
    for index in range(10):
        Client(REMOTE_ADDR=f"10.0.0.{index}").post(
            "/accounts/login/", {"username": "locked-out", "password": "wrong-password"}
        )
    response = Client(REMOTE_ADDR="10.0.1.1").post(
        "/accounts/login/", {"username": "locked-out", "password": PASSWORD}
    )
    assert response.status_code == 429


def test_right_password_before_the_limit_logs_in(staff: Any) -> None:
    client = Client()
    for _ in range(3):
        client.post("/accounts/login/", {"username": "locked-out", "password": "wrong-password"})
    response = client.post("/accounts/login/", {"username": "locked-out", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_token_authentication_is_throttled_per_address() -> None:
    client = Client()
    statuses = [
        client.get("/api/v1/executions/", HTTP_AUTHORIZATION="Token wrong-token-guess").status_code
        for _ in range(12)
    ]
    assert statuses[:10] == [401] * 10 and statuses[-1] == 429, statuses


def test_the_token_in_the_database_is_not_the_token_the_client_sends(operator: Any) -> None:
    key = token_for(operator)
    stored = ApiToken.objects.get(user=operator)
    assert key not in {stored.key_hash, stored.prefix} and len(key) >= 40
    response = Client().get("/api/v1/executions/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    forged = Client().get("/api/v1/executions/", HTTP_AUTHORIZATION=f"Token {stored.key_hash}")
    assert forged.status_code == 401


def production_env(**extra: str) -> dict[str, str]:
    env = subprocess_env(
        OPS_DEV="false",
        OPS_TESTING="false",
        SECRET_KEY="k" * 10 + "production-grade-secret-key-0123456789-abcdefghijklmnop",
        SECRETS_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        MONITORING_METRICS_TOKEN="metrics-token-0123456789",
        ALLOWED_HOSTS="ops.example.com",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto=https",
    )
    env.update(extra)
    return env


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = subprocess.run(
        manage_argv("check", "--deploy", "--fail-level", "WARNING"),
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_check_deploy_warns_when_metrics_have_no_token() -> None:
    result = subprocess.run(
        manage_argv("check", "--deploy", "--fail-level", "WARNING"),
        env=production_env(MONITORING_METRICS_TOKEN=""),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and "MONITORING_METRICS_TOKEN" in result.stdout + result.stderr


def test_production_cookies_are_secure_and_hsts_is_sent() -> None:
    script = (
        "import django; django.setup();"
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0,"
        " s.SECURE_PROXY_SSL_HEADER)"
    )
    result = subprocess.run(
        [*manage_argv("shell", "-c", script)],
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "True True True ('HTTP_X_FORWARDED_PROTO', 'https')"


def test_metrics_need_their_token_in_production(settings: Any) -> None:
    settings.DEV_MODE = False
    settings.MONITORING_METRICS_TOKEN = None
    response = Client().get("/metrics")
    assert response.status_code == 403 and b"MONITORING_METRICS_TOKEN" in response.content
    settings.MONITORING_METRICS_TOKEN = "metrics-token-0123456789"
    assert Client().get("/metrics").status_code == 401
    ok = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789")
    assert ok.status_code == 200
