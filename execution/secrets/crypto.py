"""Fernet encryption of the db backend's values (docs/contract.md#secrets-and-masking: encrypted at rest).

The key comes from ``settings.SECRETS_ENCRYPTION_KEY`` (comma-separated Fernet keys: the first
encrypts, every one decrypts, so keys can be rotated). In development and tests, when it is
unset, a stable key is derived from ``SECRET_KEY`` (sha256 -> urlsafe base64) so the embedded
setup works without configuration; with ``OPS_DEV=false`` the setting is required (system
check ``execution.E601`` and an error here).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


def _derived_dev_key() -> bytes:
    digest = hashlib.sha256(b"opsconductor-secrets:" + settings.SECRET_KEY.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _fernet() -> MultiFernet:
    raw = settings.SECRETS_ENCRYPTION_KEY
    if raw:
        keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
    elif settings.DEV_MODE:
        keys = [_derived_dev_key()]
    else:
        raise ImproperlyConfigured("SECRETS_ENCRYPTION_KEY must be set when OPS_DEV is false")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"SECRETS_ENCRYPTION_KEY is not a valid Fernet key: {exc}") from None


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "a db secret cannot be decrypted with SECRETS_ENCRYPTION_KEY (wrong or rotated-out key)"
        ) from None


@register("security", deploy=False)
def check_encryption_key(app_configs: object, **kwargs: object) -> list[Error]:
    if settings.DEV_MODE or settings.SECRETS_ENCRYPTION_KEY:
        try:
            _fernet()
        except ImproperlyConfigured as exc:
            return [Error(str(exc), id="execution.E602")]
        return []
    return [
        Error(
            "SECRETS_ENCRYPTION_KEY must be set when OPS_DEV is false",
            hint='generate one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"',
            id="execution.E601",
        )
    ]
