"""Secrets of docs/contract.md#secrets-and-masking: references in params and assets, resolved just in time in
the worker.

The engine calls ``secrets_resolve_for_step`` right before a step runs, hands the resolved
params and credential to the runner, masks every sink with ``ResolvedSecrets.values`` and
calls ``ResolvedSecrets.drop()`` when the step ends. The values also stay registered under
the execution (``execution.masking.secrets_remember``) until it leaves ``running``, so the
error, retry and dead-letter sinks after the step mask them too. Every resolution writes a
``SecretAccess`` audit row (path, never the value). Nothing here writes a value anywhere:
no log line, no event, no row (errors name the reference, never the value).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from execution.masking import secrets_forget, secrets_remember
from execution.runners.base import ResolvedTarget
from execution.secrets.backends import backend_read
from execution.secrets.references import (
    SecretError,
    SecretRef,
    find_references,
    is_reference,
    parse_reference,
)

__all__ = [
    "ResolvedSecrets",
    "SecretError",
    "SecretRef",
    "find_references",
    "is_reference",
    "parse_reference",
    "secret_resolve",
    "secrets_resolve_for_step",
]


@dataclass
class ResolvedSecrets:
    params: dict[str, Any]
    # The target's credential (e.g. {"password": ...} or {"private_key": ...}).
    credential: dict[str, str] = field(default_factory=dict)
    # Every resolved value, for masking every sink of this execution.
    values: tuple[str, ...] = ()
    # Where the values are registered for the sinks (the execution id, or "" outside one).
    registered_as: str = ""

    def drop(self) -> None:
        """End of the step: the resolved params go. Values resolved outside an execution are
        forgotten now; an execution's stay registered until it leaves ``running``."""
        if not self.registered_as:
            secrets_forget(execution_id="")
        self.params = {}
        self.credential = {}
        self.values = ()


def _select_field(ref: SecretRef, raw: str | dict[str, Any]) -> Any:
    if isinstance(raw, str):
        if not ref.field:
            return raw
        try:
            raw = json.loads(raw)
        except ValueError:
            raise SecretError(f"secret {ref}: a #field needs a JSON object value") from None
        if not isinstance(raw, dict):
            raise SecretError(f"secret {ref}: a #field needs a JSON object value")
    if ref.field:
        if ref.field not in raw:
            raise SecretError(f"secret {ref}: no field {ref.field!r}")
        return raw[ref.field]
    if len(raw) == 1:
        return next(iter(raw.values()))
    if "value" in raw:
        return raw["value"]
    raise SecretError(f"secret {ref}: the secret has several fields, name one with #field")


def secret_resolve(*, tenant_slug: str, reference: str) -> Any:
    """One reference (``"db:acme/token#field"``) -> its value, read from its backend now."""
    ref = parse_reference(reference)
    return _select_field(ref, backend_read(tenant_slug=tenant_slug, ref=ref))


def _resolve_params(value: Any, tenant_slug: str, collected: list[str], paths: list[str]) -> Any:
    if is_reference(value):
        paths.append(value["path"])
        resolved = secret_resolve(tenant_slug=tenant_slug, reference=value["path"])
        collected.append(resolved if isinstance(resolved, str) else json.dumps(resolved))
        return resolved
    if isinstance(value, dict):
        return {key: _resolve_params(item, tenant_slug, collected, paths) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_params(item, tenant_slug, collected, paths) for item in value]
    return value


def _credential(tenant_slug: str, reference: str, collected: list[str]) -> dict[str, str]:
    ref = parse_reference(reference.strip())
    raw = backend_read(tenant_slug=tenant_slug, ref=ref)
    if isinstance(raw, str) and not ref.field and raw.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            raw = json.loads(raw)
    if isinstance(raw, dict) and not ref.field:
        credential = {k: str(v) for k, v in raw.items() if isinstance(v, (str, int))}
    else:
        value = str(_select_field(ref, raw))
        name = ref.field or ("private_key" if "PRIVATE KEY-----" in value else "password")
        credential = {name: value}
    collected.extend(v for k, v in credential.items() if k not in {"username", "user"})
    return credential


def _audit(
    tenant_slug: str,
    execution: Any,
    step_index: int | None,
    paths: list[str],
    target: ResolvedTarget | None,
) -> None:
    """One ``SecretAccess`` row per reference read (one INSERT for the step)."""
    from execution.models import SecretAccess, Tenant

    credential_ref = target.credential_ref.strip() if target is not None and target.credential_ref else None
    accesses = [(path, "credential" if path == credential_ref else "param") for path in paths]
    if not accesses:
        return
    tenant_id = execution.tenant_id if execution is not None else None
    if tenant_id is None:
        tenant_id = Tenant.objects.filter(slug=tenant_slug).values_list("pk", flat=True).first()
        if tenant_id is None:
            return
    SecretAccess.objects.bulk_create(
        SecretAccess(
            tenant_id=tenant_id,
            actor_id=execution.actor_id if execution is not None else None,
            execution_id=execution.execution_id if execution is not None else None,
            step_index=step_index,
            path=path[:512],
            usage=usage,
            worker=f"{socket.gethostname()}:{os.getpid()}"[:255],
        )
        for path, usage in accesses
    )


def secrets_resolve_for_step(
    *,
    tenant_slug: str,
    params: dict[str, Any],
    target: ResolvedTarget | None,
    execution: Any = None,
    step_index: int | None = None,
) -> ResolvedSecrets:
    """Replace every ``{"type": "secret", "path": ...}`` in params by its value, and resolve
    the target's ``credential_ref`` into ``credential``.

    Each reference read is audited (``SecretAccess``: the execution's actor, execution,
    step, path), also when it fails. The values are registered for masking under the
    execution. Raises SecretError (message names the reference, never a value) when one
    cannot be resolved. Call ``drop()`` on the result when the step ends.
    """
    collected: list[str] = []
    paths: list[str] = []  # every reference read (or tried), in order
    try:
        resolved_params = _resolve_params(params, tenant_slug, collected, paths)
        credential: dict[str, str] = {}
        if target is not None and target.credential_ref:
            paths.append(target.credential_ref.strip())
            credential = _credential(tenant_slug, target.credential_ref, collected)
    finally:
        _audit(tenant_slug, execution, step_index, paths, target)
    values = tuple(dict.fromkeys(v for v in collected if v))
    key = str(execution.execution_id) if execution is not None else ""
    secrets_remember(execution_id=key, values=values)
    return ResolvedSecrets(params=resolved_params, credential=credential, values=values, registered_as=key)
