"""One policy, every door (docs/contract.md#rbac): ``decide`` and ``require`` per ``Right``."""

from execution.policy.binding import TokenBinding, token_bind, token_binding
from execution.policy.enforce import RightDenied, rbac_audit, rbac_violation_record, require
from execution.policy.four_eyes import four_eyes_barred
from execution.policy.members import on_behalf_refusal, users_manageable_by
from execution.policy.rules import (
    ROLE_RIGHTS,
    Decision,
    Right,
    Target,
    decide,
    every_tenant,
    membership_known,
    tenant_ids_where,
)
from execution.policy.targets import targets_of

__all__ = [
    "ROLE_RIGHTS",
    "Decision",
    "Right",
    "RightDenied",
    "Target",
    "TokenBinding",
    "decide",
    "every_tenant",
    "four_eyes_barred",
    "membership_known",
    "on_behalf_refusal",
    "rbac_audit",
    "rbac_violation_record",
    "require",
    "targets_of",
    "tenant_ids_where",
    "token_bind",
    "token_binding",
    "users_manageable_by",
]
