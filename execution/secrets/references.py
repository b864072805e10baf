"""The docs/contract.md#secrets-and-masking reference format: ``{"type": "secret", "path":
"<backend>:<path>[#field]"}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from execution.errors import DomainError

BACKENDS = ("env", "file", "db", "vault", "aws")


class SecretError(DomainError):
    """A reference that cannot be resolved. The message never contains a value."""


@dataclass(frozen=True)
class SecretRef:
    backend: str
    path: str
    field: str = ""

    def __str__(self) -> str:
        return f"{self.backend}:{self.path}" + (f"#{self.field}" if self.field else "")


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "secret" and isinstance(value.get("path"), str)


def parse_reference(text: str) -> SecretRef:
    """``"db:acme/token#field"`` -> SecretRef; raises SecretError on a malformed reference."""
    backend, sep, rest = text.partition(":")
    if not sep or backend not in BACKENDS:
        raise SecretError(f"secret reference {text!r}: backend must be one of {', '.join(BACKENDS)}")
    path, _, field = rest.partition("#")
    path = path.strip()
    if not path:
        raise SecretError(f"secret reference {text!r}: empty path")
    return SecretRef(backend=backend, path=path, field=field.strip())


def find_references(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every reference in a params structure as (field path, reference text)."""
    found: list[tuple[str, str]] = []
    if is_reference(value):
        found.append((prefix, value["path"]))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(find_references(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(find_references(item, f"{prefix}[{index}]"))
    return found
