"""Writes to the ``db`` backend (admin, ``manage.py secret``): the value is encrypted here."""

from __future__ import annotations

from execution.models import SecretEntry, Tenant
from execution.secrets.crypto import encrypt
from execution.secrets.references import SecretError

# Shorter values are refused (docs/contract.md#secrets-and-masking): a 3-character value masked everywhere
# would blank out
# ordinary text, and left alone it would be a secret in clear.
SECRET_MIN_LENGTH = 8


def secret_value_problem(value: str) -> str:
    """Why ``value`` cannot be stored as a secret, or "" when it can."""
    if not value:
        return "a secret value may not be empty"
    if len(value) < SECRET_MIN_LENGTH:
        return f"a secret value needs at least {SECRET_MIN_LENGTH} characters"
    return ""


def secret_set(*, tenant: Tenant, path: str, value: str, description: str = "") -> SecretEntry:
    """Create or replace the db secret ``path`` of ``tenant`` (stored Fernet-encrypted)."""
    path = path.strip()
    if path.startswith("db:"):
        path = path[3:]
    if not path or "#" in path:
        raise SecretError("a secret path is non-empty and has no '#'")
    problem = secret_value_problem(value)
    if problem:
        raise SecretError(problem)
    entry, _ = SecretEntry.objects.update_or_create(
        tenant=tenant, path=path, defaults={"ciphertext": encrypt(value), "description": description}
    )
    return entry


def secret_delete(*, tenant: Tenant, path: str) -> bool:
    """Delete the db secret ``path`` of ``tenant``; True if it existed."""
    deleted, _ = SecretEntry.objects.filter(tenant=tenant, path=path.removeprefix("db:")).delete()
    return bool(deleted)


def secret_paths(*, tenant: Tenant) -> list[str]:
    """The tenant's db secret paths (never values)."""
    return list(SecretEntry.objects.filter(tenant=tenant).order_by("path").values_list("path", flat=True))
