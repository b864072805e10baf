"""Who may do what, written down from docs/contract.md#rbac and docs/security.md ("Rights and
doors") — never computed by the policy under test, so a wrong policy fails the door tests.

A row is a right; a column a persona; a cell the work (environment x action class) the
persona may do it for. A persona not named in a row may do nothing of it. To add a rule,
add a persona (how it is made: its role, tenant, account state) and its cells; to add a
right, add its row here and its doors in tests/execution/policy/doors.py (a test fails
for a right of the policy without both).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from execution.enums import Role
from execution.policy import Right

ENVIRONMENTS = ("dev", "staging", "prod")
ACTION_CLASSES = ("read", "modify", "deploy")
Work = tuple[str, str]  # (environment, action class)


@dataclass(frozen=True)
class Persona:
    role: str
    tenant: str = "acme"  # the tenant of the work is acme; "other" makes an outsider
    # Deactivated after it logged in and got its token (the doors check the account anew).
    deactivated: bool = False


PERSONAS: dict[str, Persona] = {
    "viewer": Persona(Role.VIEWER),
    "operator": Persona(Role.OPERATOR),
    "deployer": Persona(Role.DEPLOYER),
    "approver": Persona(Role.APPROVER),
    "admin": Persona(Role.ADMIN),
    # The one who submitted the work the doors act on (an approver: the requester rule of
    # voting and of cancelling show against that role).
    "requester": Persona(Role.APPROVER),
    # A member of another tenant only, with every right there.
    "outsider": Persona(Role.ADMIN, tenant="other"),
    # An admin of the tenant whose account was switched off.
    "deactivated": Persona(Role.ADMIN, deactivated=True),
}

EVERYWHERE: frozenset[Work] = frozenset(product(ENVIRONMENTS, ACTION_CLASSES))
# An operator runs read and modify work in dev and staging.
OPERATOR_WORK: frozenset[Work] = frozenset(
    {("dev", "read"), ("dev", "modify"), ("staging", "read"), ("staging", "modify")}
)
MEMBERS = ("viewer", "operator", "deployer", "approver", "admin", "requester")

ALLOWED: dict[Right, dict[str, frozenset[Work]]] = {
    # Every role of the tenant reads its executions and watches their streams.
    Right.READ: dict.fromkeys(MEMBERS, EVERYWHERE),
    Right.SUBSCRIBE: dict.fromkeys(MEMBERS, EVERYWHERE),
    # Operator: read/modify in dev and staging; deployer adds deploy and prod; admin all.
    Right.SUBMIT: {"operator": OPERATOR_WORK, "deployer": EVERYWHERE, "admin": EVERYWHERE},
    # Admin; the execution's requester; anyone whose role may run that work.
    Right.CANCEL: {
        "operator": OPERATOR_WORK,
        "deployer": EVERYWHERE,
        "admin": EVERYWHERE,
        "requester": EVERYWHERE,
    },
    # Approver or admin, never on their own execution (the requester is an approver).
    Right.VOTE: {"approver": EVERYWHERE, "admin": EVERYWHERE},
    # Admin only: dead letters, secrets, members.
    Right.REQUEUE: {"admin": EVERYWHERE},
    Right.ARCHIVE: {"admin": EVERYWHERE},
    Right.SECRET_SET: {"admin": EVERYWHERE},
    Right.SECRET_LIST: {"admin": EVERYWHERE},
    Right.MANAGE_MEMBERS: {"admin": EVERYWHERE},
    # Admin only: the tenant's configuration (assets, rules, allow-list, limits, subscriptions).
    Right.CONFIGURE: {"admin": EVERYWHERE},
    # Every member issues and revokes their own API tokens in the tenant.
    Right.TOKEN_ISSUE: dict.fromkeys(MEMBERS, EVERYWHERE),
    Right.TOKEN_REVOKE: dict.fromkeys(MEMBERS, EVERYWHERE),
}

# The work each right is tried for: the ones that depend on the work in every environment x
# action class; the ones about an execution in every environment; the tenant's own
# settings (secrets, members, configuration) once.
TENANT_WIDE = frozenset(
    {
        Right.SECRET_SET,
        Right.SECRET_LIST,
        Right.MANAGE_MEMBERS,
        Right.CONFIGURE,
        Right.TOKEN_ISSUE,
        Right.TOKEN_REVOKE,
    }
)
BY_WORK = frozenset({Right.SUBMIT, Right.CANCEL})


def works_of(right: Right) -> list[Work]:
    if right in BY_WORK:
        return sorted(EVERYWHERE)
    if right in TENANT_WIDE:
        return [("prod", "deploy")]
    return [(env, "deploy") for env in ENVIRONMENTS]


def allowed(right: Right, persona: str, work: Work) -> bool:
    return work in ALLOWED[right].get(persona, frozenset())
