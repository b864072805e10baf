"""Readiness of the secret backends and the masking self-test (for ``go_no_go``/``/readyz``).

``secrets_backends_check()`` never reads a real secret: the db backend proves its key with an
encrypt/decrypt round trip, the file backend that its directory is readable, Vault that its
token authenticates and AWS that Secrets Manager answers a one-item listing. A backend
that is not configured says so ("not configured"), it is not claimed to be reachable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings

NOT_CONFIGURED = "not configured"


def _file_check() -> dict[str, Any]:
    if not settings.SECRETS_FILE_DIR:
        return {"ok": True, "detail": NOT_CONFIGURED}
    directory = Path(settings.SECRETS_FILE_DIR)
    if not directory.exists():
        return {"ok": True, "detail": f"{NOT_CONFIGURED} ({directory} does not exist)"}
    if not directory.is_dir() or not os.access(directory, os.R_OK | os.X_OK):
        return {"ok": False, "detail": f"{directory} is not a readable directory"}
    return {"ok": True, "detail": f"{directory} readable"}


def _aws_check() -> dict[str, Any]:
    """Configured = an endpoint is set or boto3 finds credentials; then one listing call."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session()
    if not settings.AWS_SECRETS_ENDPOINT_URL and session.get_credentials() is None:
        return {"ok": True, "detail": NOT_CONFIGURED}
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
        return {"ok": False, "detail": f"{where}: {code}"}
    except BotoCoreError as exc:
        return {"ok": False, "detail": f"{where}: unreachable ({type(exc).__name__})"}
    return {"ok": True, "detail": f"{where} answered"}


def secrets_backends_check() -> dict[str, dict[str, Any]]:
    """Backend name -> {"ok": bool, "detail": str} (unconfigured optional backends are ok)."""
    from execution.secrets.crypto import decrypt, encrypt

    report: dict[str, dict[str, Any]] = {
        "env": {"ok": True, "detail": f"prefix {settings.SECRETS_ENV_PREFIX}"}
    }
    report["file"] = _file_check()
    try:
        ok = decrypt(encrypt("self-test")) == "self-test"
        report["db"] = {"ok": ok, "detail": "Fernet key round trip"}
    except Exception as exc:
        report["db"] = {"ok": False, "detail": str(exc)}
    if settings.VAULT_ADDR:
        try:
            import hvac

            client = hvac.Client(url=settings.VAULT_ADDR, token=settings.VAULT_TOKEN, timeout=5)
            report["vault"] = {"ok": bool(client.is_authenticated()), "detail": settings.VAULT_ADDR}
        except Exception as exc:
            report["vault"] = {"ok": False, "detail": type(exc).__name__}
    else:
        report["vault"] = {"ok": True, "detail": NOT_CONFIGURED}
    report["aws"] = _aws_check()
    return report


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
