"""Which tenant an API token binds its request to (docs/api.md#tokens).

A token is issued in one tenant and acts in that tenant only, whatever memberships its user
gains later. The door that authenticates a request by token (REST ``Authorization: Token``,
WebSocket ``?token=``) marks the user object it hands on with the token's binding, and
``decide``/``tenant_ids_where`` read it: a bound request holds no right in any other tenant.
Sessions carry no binding. Code that reloads the user from the database drops the mark, so
the policy is always asked with the request's own user object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_ATTRIBUTE = "_opsconductor_token_binding"


@dataclass(frozen=True)
class TokenBinding:
    token_pk: int
    tenant_id: int


def token_bind(user: Any, *, token_pk: int, tenant_id: int) -> Any:
    """Mark ``user`` (the object the request carries) as acting through this token."""
    setattr(user, _ATTRIBUTE, TokenBinding(token_pk=token_pk, tenant_id=tenant_id))
    return user


def token_binding(user: Any) -> TokenBinding | None:
    """The binding of the token this request authenticated with; None for a session."""
    binding = getattr(user, _ATTRIBUTE, None)
    return binding if isinstance(binding, TokenBinding) else None
