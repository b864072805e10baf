"""The five secret backends of docs/contract.md#secrets-and-masking. Each maps (tenant, path) -> the stored
string.

Every backend is tenant-scoped by construction, so a plan of one tenant cannot name a
secret of another:
- ``env``   reads ``<SECRETS_ENV_PREFIX><TENANT>__<PATH>``, escaped so that two (tenant, path)
            pairs never share a variable (``env_variable_name``);
- ``file``  reads ``<SECRETS_FILE_DIR>/<tenant>/<path>`` (no escaping the tenant's directory);
- ``db``    reads the tenant's ``SecretEntry`` row and decrypts it (Fernet);
- ``vault`` reads KV v2 ``<VAULT_MOUNT>/data/<tenant>/<path>`` with hvac;
- ``aws``   reads Secrets Manager ``<AWS_SECRETS_PREFIX><tenant>/<path>`` with boto3.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings

from execution.secrets.references import SecretError, SecretRef


def _env_escape(text: str, *, path: bool) -> str:
    """Letters upper-cased, digits kept, in a path ``/`` -> ``__``, any other character (``_``
    too, and a tenant's ``/``) -> ``_XX_`` per UTF-8 byte (``-`` -> ``_2D_``, ``_`` ->
    ``_5F_``). Decodable left to right, with the first ``__`` between tenant and path, so two
    different (tenant, path) pairs (ignoring letter case) never give the same name."""

    def one(char: str) -> str:
        if char.isascii() and char.isalnum():
            return char.upper()
        if char == "/" and path:
            return "__"
        return "".join(f"_{byte:02X}_" for byte in char.encode())

    return "".join(one(char) for char in text)


def env_variable_name(*, tenant_slug: str, path: str) -> str:
    """``acme`` + ``deploy-token`` -> ``OPS_SECRET_ACME__DEPLOY_2D_TOKEN`` (docs/secrets.md)."""
    return (
        f"{settings.SECRETS_ENV_PREFIX}{_env_escape(tenant_slug, path=False)}__{_env_escape(path, path=True)}"
    )


def _env(tenant_slug: str, ref: SecretRef) -> str:
    name = env_variable_name(tenant_slug=tenant_slug, path=ref.path)
    value = os.environ.get(name)
    if value is None:
        raise SecretError(f"secret {ref}: environment variable {name} is not set")
    return value


def _file(tenant_slug: str, ref: SecretRef) -> str:
    base = (Path(str(settings.SECRETS_FILE_DIR)) / tenant_slug).resolve()
    target = (base / ref.path).resolve()
    if base not in target.parents:
        raise SecretError(f"secret {ref}: path leaves the tenant's secrets directory")
    try:
        return target.read_text().rstrip("\r\n")
    except OSError as exc:
        raise SecretError(f"secret {ref}: cannot read file ({exc.strerror})") from None


def _db(tenant_slug: str, ref: SecretRef) -> str:
    from execution.models import SecretEntry
    from execution.secrets.crypto import decrypt

    entry = SecretEntry.objects.filter(tenant__slug=tenant_slug, path=ref.path).first()
    if entry is None:
        raise SecretError(f"secret {ref}: no such secret in tenant {tenant_slug!r}")
    return decrypt(entry.ciphertext)


def _vault(tenant_slug: str, ref: SecretRef) -> str | dict[str, Any]:
    import hvac
    from hvac.exceptions import InvalidPath, VaultError

    if not settings.VAULT_ADDR:
        raise SecretError(f"secret {ref}: VAULT_ADDR is not configured")
    client = hvac.Client(url=settings.VAULT_ADDR, token=settings.VAULT_TOKEN, timeout=10)
    try:
        response = client.secrets.kv.v2.read_secret_version(
            path=f"{tenant_slug}/{ref.path}", mount_point=settings.VAULT_MOUNT, raise_on_deleted_version=True
        )
    except InvalidPath:
        raise SecretError(f"secret {ref}: not found in Vault") from None
    except (VaultError, OSError) as exc:
        raise SecretError(f"secret {ref}: Vault error ({type(exc).__name__})") from None
    data = response.get("data", {}).get("data")
    if not isinstance(data, dict):
        raise SecretError(f"secret {ref}: Vault answered without data")
    return data


def _aws(tenant_slug: str, ref: SecretRef) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "secretsmanager",
        region_name=settings.AWS_SECRETS_REGION,
        endpoint_url=settings.AWS_SECRETS_ENDPOINT_URL or None,
    )
    secret_id = f"{settings.AWS_SECRETS_PREFIX}{tenant_slug}/{ref.path}"
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise SecretError(f"secret {ref}: AWS Secrets Manager {code}") from None
    except BotoCoreError as exc:
        raise SecretError(f"secret {ref}: AWS Secrets Manager unreachable ({type(exc).__name__})") from None
    if "SecretString" not in response:
        raise SecretError(f"secret {ref}: binary secrets are not supported")
    return str(response["SecretString"])


BACKEND_READERS: dict[str, Any] = {"env": _env, "file": _file, "db": _db, "vault": _vault, "aws": _aws}


def backend_read(*, tenant_slug: str, ref: SecretRef) -> str | dict[str, Any]:
    """The raw stored value (a string, or a dict for Vault)."""
    return BACKEND_READERS[ref.backend](tenant_slug, ref)  # type: ignore[no-any-return]
