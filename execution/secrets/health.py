"""Readiness of the secret backends and the masking self-test (for ``go_no_go``/``/readyz``).

``secrets_backends_check()`` never reads a real secret: the db backend proves its key with an
encrypt/decrypt round trip, Vault and AWS are checked only when configured.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def secrets_backends_check() -> dict[str, dict[str, Any]]:
    """Backend name -> {"ok": bool, "detail": str} (unconfigured optional backends are ok)."""
    from execution.secrets.crypto import decrypt, encrypt

    report: dict[str, dict[str, Any]] = {
        "env": {"ok": True, "detail": f"prefix {settings.SECRETS_ENV_PREFIX}"}
    }
    report["file"] = {"ok": True, "detail": str(settings.SECRETS_FILE_DIR)}
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
        report["vault"] = {"ok": True, "detail": "not configured"}
    report["aws"] = {
        "ok": True,
        "detail": f"region {settings.AWS_SECRETS_REGION}"
        + (f", endpoint {settings.AWS_SECRETS_ENDPOINT_URL}" if settings.AWS_SECRETS_ENDPOINT_URL else ""),
    }
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
