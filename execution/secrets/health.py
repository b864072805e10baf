"""Readiness of the secret backends and the masking self-test (for ``go_no_go``/``/readyz``).

``secrets_backends_check()`` never reads a real secret: the db backend proves its key with an
encrypt/decrypt round trip, the file backend that its directory is readable, Vault that its
token authenticates and AWS that Secrets Manager answers a one-item listing. Each backend is
``ok``, ``not configured`` (never called reachable) or ``failing`` (configured, and it
cannot serve: a readiness failure).
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

# A backend's state: in use and answering, not set up at all, or set up and failing.
OK, NOT_CONFIGURED, FAILING = "ok", "not configured", "failing"


def _state(state: str, detail: str = "") -> dict[str, str]:
    return {"state": state, "detail": detail}


def _file_check() -> dict[str, str]:
    """Configured when SECRETS_FILE_DIR names a directory of its own, or the default one
    exists; a directory named explicitly that is missing or unreadable fails."""
    directory = Path(str(settings.SECRETS_FILE_DIR))
    explicit = settings.SECRETS_FILE_DIR != settings.SECRETS_FILE_DIR_DEFAULT
    if not directory.exists():
        if explicit:
            return _state(FAILING, f"SECRETS_FILE_DIR {directory} does not exist")
        return _state(NOT_CONFIGURED, f"no directory {directory}")
    if not directory.is_dir() or not os.access(directory, os.R_OK | os.X_OK):
        return _state(FAILING, f"{directory} is not a readable directory")
    return _state(OK, f"{directory} readable")


def _db_check() -> dict[str, str]:
    from execution.secrets.crypto import decrypt, encrypt

    try:
        if decrypt(encrypt("self-test")) == "self-test":
            return _state(OK, "Fernet key round trip")
        return _state(FAILING, "Fernet key round trip gave another value")
    except Exception as exc:  # a bad key is the failure reported here
        return _state(FAILING, f"Fernet key: {type(exc).__name__}")


def _vault_check() -> dict[str, str]:
    if not settings.VAULT_ADDR:
        return _state(NOT_CONFIGURED, "VAULT_ADDR unset")
    if not settings.VAULT_TOKEN:
        return _state(FAILING, f"{settings.VAULT_ADDR}: VAULT_TOKEN unset")
    import hvac

    try:
        client = hvac.Client(url=settings.VAULT_ADDR, token=settings.VAULT_TOKEN, timeout=5)
        if client.is_authenticated():
            return _state(OK, f"{settings.VAULT_ADDR} authenticated")
        return _state(FAILING, f"{settings.VAULT_ADDR}: token refused")
    except Exception as exc:  # unreachable, TLS, a bad address: the backend cannot serve
        return _state(FAILING, f"{settings.VAULT_ADDR}: unreachable ({type(exc).__name__})")


def _aws_check() -> dict[str, str]:
    """Configured = an endpoint is set or boto3 finds credentials; then one listing call."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session()
    if not settings.AWS_SECRETS_ENDPOINT_URL and session.get_credentials() is None:
        return _state(NOT_CONFIGURED, "no endpoint and no AWS credentials")
    where = settings.AWS_SECRETS_ENDPOINT_URL or f"region {settings.AWS_SECRETS_REGION}"
    client = session.client(
        "secretsmanager",
        region_name=settings.AWS_SECRETS_REGION,
        endpoint_url=settings.AWS_SECRETS_ENDPOINT_URL or None,
        config=Config(connect_timeout=3, read_timeout=3, retries={"max_attempts": 1}),
    )
    try:
        client.list_secrets(MaxResults=1)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        return _state(FAILING, f"{where}: {code}")
    except BotoCoreError as exc:
        return _state(FAILING, f"{where}: unreachable ({type(exc).__name__})")
    return _state(OK, f"{where} answered")


def secrets_backends_check() -> dict[str, dict[str, str]]:
    """Backend name -> {"state": ok | not configured | failing, "detail": ...}."""
    return {
        # Always available: it reads the worker's environment.
        "env": _state(OK, f"prefix {settings.SECRETS_ENV_PREFIX}"),
        "file": _file_check(),
        "db": _db_check(),
        "vault": _vault_check(),
        "aws": _aws_check(),
    }


def masking_self_test() -> list[str]:
    """Problems found by masking known credentials (empty list = pass)."""
    from execution.masking import mask_data, mask_text

    samples = {
        "exact value": ("the value is zq8-canary-Xy", ["zq8-canary-Xy"], "zq8-canary-Xy"),
        "bearer": ("Authorization: Bearer abc.def.ghi", [], "abc.def.ghi"),
        "aws key": ("AKIAIOSFODNN7EXAMPLE", [], "AKIAIOSFODNN7EXAMPLE"),
        "url": ("postgres://u:pw-123@h/db", [], "pw-123"),
        "private key": ("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", [], "MIIB"),
    }
    problems = [name for name, (text, values, secret) in samples.items() if secret in mask_text(text, values)]
    if mask_data({"password": "p4ss"}).get("password") == "p4ss":
        problems.append("sensitive key")
    return problems
