"""Who may do what (docs/contract.md#rbac): one function per right.

``decide`` is pure (reads, never writes) and is the only place a right is decided; every
door (REST, pages, admin, WebSocket, ``manage.py --user``, the worker's re-check) asks it.

Roles: viewer reads; operator submits read/modify work in dev and staging; deployer adds
deploy and prod; approver votes; admin may do everything in its tenant (DLQ requeue and
archive, secrets, members, other members' tokens, the tenant's configuration). Every
member issues and revokes their own API tokens. A request authenticated by an API token
acts in the token's tenant only (``binding.py``): in any other tenant it holds no right, as
if it were no member. Grants (``AccessGrant``) add submit rights per environment, action
class (a grant covers its class and the lower ones) and asset (hostname pattern or tag).
With ``RBAC_STRICT`` off, role limits on environment and action class are a warning
(``Decision.warning``) instead of a refusal; membership is always required. A deactivated
user holds no right; a user acts in a tenant only through a membership, a superuser too
(REST, pages, WebSockets, monitoring, commands). The one exception is the Django admin, the
superuser's all-tenant tool (``door="admin"``, see :func:`every_tenant`): tenants and their
first admin are bootstrapped there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings
from django.db.models import Q

from execution.enums import ACTION_CLASS_RANK, ActionClass, Environment, Role
from execution.models import AccessGrant, Execution, Membership, Tenant
from execution.policy.binding import token_binding
from execution.policy.four_eyes import requester_refusal, role_too_recent
from execution.policy.members import subject_out_of_reach


class Right(StrEnum):
    SUBMIT = "submit"
    READ = "read"
    CANCEL = "cancel"
    VOTE = "vote"
    REQUEUE = "requeue"
    ARCHIVE = "archive"
    SECRET_SET = "secret_set"  # noqa: S105 - a right's name, not a secret
    SECRET_LIST = "secret_list"  # noqa: S105 - a right's name, not a secret
    MANAGE_MEMBERS = "manage_members"
    SUBSCRIBE = "subscribe"
    # The tenant's configuration: assets, read-only command rules, outbound allow-list
    # rules, concurrency limits, notification subscriptions (and their deliveries).
    CONFIGURE = "configure"
    # Issue / revoke an API token of ``subject`` (default: oneself) bound to the tenant.
    TOKEN_ISSUE = "token_issue"  # noqa: S105 - a right's name, not a secret
    TOKEN_REVOKE = "token_revoke"  # noqa: S105 - a right's name, not a secret


# The rights a role alone grants, whatever the execution (the set form, used by selectors).
ALL_ROLES = frozenset(Role)
ADMIN_ONLY = frozenset({Role.ADMIN})
ROLE_RIGHTS: dict[Right, frozenset[Role]] = {
    Right.READ: ALL_ROLES,
    Right.SUBSCRIBE: ALL_ROLES,
    Right.VOTE: frozenset({Role.APPROVER, Role.ADMIN}),
    Right.REQUEUE: ADMIN_ONLY,
    Right.ARCHIVE: ADMIN_ONLY,
    Right.SECRET_SET: ADMIN_ONLY,
    Right.SECRET_LIST: ADMIN_ONLY,
    Right.MANAGE_MEMBERS: ADMIN_ONLY,
    Right.CONFIGURE: ADMIN_ONLY,
    # One's own tokens (another member's: MANAGE_MEMBERS, decided with the subject).
    Right.TOKEN_ISSUE: ALL_ROLES,
    Right.TOKEN_REVOKE: ALL_ROLES,
}
# The admin is a superuser's all-tenant tool: there a superuser holds these rights in every
# tenant without a membership. Votes count people (a vote needs the voter's own approver or
# admin membership) and nothing is submitted through the admin. Nor is a token issued: a
# superuser's credentials carry nobody else's name (their own: through a membership).
ADMIN_DOOR = "admin"
SUPERUSER_ADMIN_RIGHTS = frozenset(Right) - {Right.VOTE, Right.SUBMIT, Right.TOKEN_ISSUE}
SUBMIT_ROLES = frozenset({Role.OPERATOR, Role.DEPLOYER, Role.ADMIN})


@dataclass(frozen=True)
class Target:
    """One step's target as a grant sees it: hostname, tags and the step's action class."""

    hostname: str = ""
    tags: tuple[str, ...] = ()
    action_class: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    # A short machine word for the refusal: inactive, not_member, role, requester, ...
    code: str = ""
    # Non-strict mode: allowed, but strict mode would have refused for this reason.
    warning: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOWED = Decision(True)


@dataclass(frozen=True)
class _Member:
    tenant: Tenant | int
    role: str
    can_submit_on_behalf: bool
    # Since when the role is held (four eyes); None where the caller did not read it.
    role_since: datetime | None = None


@dataclass(frozen=True)
class _Ask:
    user: Any
    right: Right
    member: _Member
    execution: Execution | None
    environment: str | None
    action_class: str | None
    assets: Iterable[Target]
    on_behalf: bool
    # MANAGE_MEMBERS / TOKEN_*: the account being added or given (or losing) a token.
    subject: Any = None


def _deny(reason: str, code: str) -> Decision:
    return Decision(False, reason, code)


def _tenant_label(tenant: Tenant | int) -> str:
    return repr(tenant.slug) if isinstance(tenant, Tenant) else f"#{tenant}"


def role_allows(*, role: str, environment: str, action_class: str) -> bool:
    """The role table for running work (submit, and cancel of someone else's work)."""
    if role in (Role.ADMIN, Role.DEPLOYER):
        return True
    if role == Role.OPERATOR:
        return environment in (Environment.DEV, Environment.STAGING) and action_class in (
            ActionClass.READ,
            ActionClass.MODIFY,
        )
    return False


def _grant_matches(grant: AccessGrant, environment: str, target: Target) -> bool:
    if grant.environment and grant.environment != environment:
        return False
    if (
        grant.action_class
        and target.action_class
        and (
            ACTION_CLASS_RANK[ActionClass(grant.action_class)]
            < ACTION_CLASS_RANK[ActionClass(target.action_class)]
        )
    ):
        return False
    if grant.asset_pattern and not (target.hostname and fnmatchcase(target.hostname, grant.asset_pattern)):
        return False
    return not (grant.asset_tag and grant.asset_tag not in target.tags)


def _grants(user: Any, tenant: Tenant | int) -> list[AccessGrant]:
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    group_ids = list(user.groups.values_list("pk", flat=True))
    return list(
        AccessGrant.objects.filter(tenant_id=tenant_id).filter(Q(user_id=user.pk) | Q(group_id__in=group_ids))
    )


def strict() -> bool:
    return bool(settings.RBAC_STRICT)


def _submit(ask: _Ask) -> Decision:
    member = ask.member
    if ask.on_behalf:
        if not member.can_submit_on_behalf:
            return _deny("this account may not submit on behalf of other users", "on_behalf")
        return ALLOWED
    if ask.environment is None:
        return ALLOWED  # membership is enough to ask; the plan's rights are decided with it
    overall = ask.action_class or ActionClass.READ
    if member.role in SUBMIT_ROLES and role_allows(
        role=member.role, environment=ask.environment, action_class=overall
    ):
        return ALLOWED
    grants: list[AccessGrant] | None = None
    targets = list(ask.assets) or [Target(action_class=overall)]
    for index, target in enumerate(targets):
        step_class = target.action_class or overall
        if member.role in SUBMIT_ROLES and role_allows(
            role=member.role, environment=ask.environment, action_class=step_class
        ):
            continue
        if grants is None:
            grants = _grants(ask.user, member.tenant)
        step = Target(target.hostname, target.tags, step_class)
        if any(_grant_matches(g, ask.environment, step) for g in grants):
            continue
        reason = f"role {member.role!r} may not run {step_class} steps in {ask.environment} (step {index})"
        if not strict() and member.role in SUBMIT_ROLES:
            return Decision(True, warning=reason)
        return _deny(reason, "role")
    return ALLOWED


def _read(ask: _Ask) -> Decision:
    return _by_role(ask, "read executions")


def _subscribe(ask: _Ask) -> Decision:
    # Watching a stream shows exactly what reading does.
    return _read(ask)


def _cancel(ask: _Ask) -> Decision:
    """Admin; the requester of the execution; anyone whose role may run that work."""
    member, execution = ask.member, ask.execution
    if member.role == Role.ADMIN:
        return ALLOWED
    if execution is not None and execution.actor_id == ask.user.pk:
        return ALLOWED
    environment = ask.environment or (execution.environment if execution else None)
    action_class = ask.action_class or (execution.action_class if execution else None)
    if (
        environment
        and member.role in SUBMIT_ROLES
        and role_allows(
            role=member.role, environment=environment, action_class=action_class or ActionClass.DEPLOY
        )
    ):
        return ALLOWED
    return _deny(
        f"role {member.role!r} may not cancel {action_class or 'any'} work in {environment or 'this tenant'}",
        "role",
    )


def _vote(ask: _Ask) -> Decision:
    """Four eyes (policy/four_eyes.py): neither requester votes, and a voter's role must
    predate the submission; then the approver or admin role."""
    requester = requester_refusal(user=ask.user, execution=ask.execution) if ask.execution else ""
    if requester:
        return _deny(requester, "requester")
    if ask.member.role not in ROLE_RIGHTS[Right.VOTE]:
        return _deny(
            f"only a tenant member with the approver or admin role may vote ({ask.user} is "
            f"{ask.member.role} in tenant {_tenant_label(ask.member.tenant)})",
            "missing_role",
        )
    too_recent = (
        role_too_recent(user=ask.user, execution=ask.execution, role_since=ask.member.role_since)
        if ask.execution
        else ""
    )
    return _deny(too_recent, "role_too_recent") if too_recent else ALLOWED


def _by_role(ask: _Ask, what: str) -> Decision:
    if ask.member.role in ROLE_RIGHTS[ask.right]:
        return ALLOWED
    if ROLE_RIGHTS[ask.right] == ADMIN_ONLY:
        return _deny(f"only an admin of the tenant may {what} (role {ask.member.role!r})", "role")
    roles = " or ".join(sorted(ROLE_RIGHTS[ask.right]))
    return _deny(f"role {ask.member.role!r} may not {what} ({roles} only)", "role")


def _requeue(ask: _Ask) -> Decision:
    return _by_role(ask, "requeue dead letters")


def _archive(ask: _Ask) -> Decision:
    return _by_role(ask, "archive dead letters")


def _secret_set(ask: _Ask) -> Decision:
    return _by_role(ask, "set secrets")


def _secret_list(ask: _Ask) -> Decision:
    return _by_role(ask, "list secrets")


def _manage_members(ask: _Ask) -> Decision:
    # Asked for TOKEN_* too: the role table of MANAGE_MEMBERS decides, not the asking right's.
    decision = _by_role(dataclasses.replace(ask, right=Right.MANAGE_MEMBERS), "manage members")
    if not decision or ask.subject is None or getattr(ask.user, "is_superuser", False):
        return decision  # a superuser (admin of the tenant) adds anyone: "a superuser does it"
    reason = subject_out_of_reach(ask.user, ask.subject)
    return _deny(reason, "subject") if reason else ALLOWED


def _own(ask: _Ask) -> bool:
    return ask.subject is None or ask.subject.pk == ask.user.pk


def _token_issue(ask: _Ask) -> Decision:
    """Every member issues their own tokens; another account's: an admin who may manage that
    account, and never a superuser's (a superuser issues their own)."""
    if _own(ask):
        return ALLOWED
    if getattr(ask.subject, "is_superuser", False):
        return _deny(
            f"the API tokens of superuser {ask.subject.get_username()!r} are issued by that superuser alone",
            "subject",
        )
    return _manage_members(ask)


def _token_revoke(ask: _Ask) -> Decision:
    """Revoking takes access away: one's own, or any token of the tenant for its admins."""
    if _own(ask):
        return ALLOWED
    return _manage_members(dataclasses.replace(ask, subject=None))


def _configure(ask: _Ask) -> Decision:
    return _by_role(ask, "change the tenant's configuration")


RULES: dict[Right, Callable[[_Ask], Decision]] = {
    Right.SUBMIT: _submit,
    Right.READ: _read,
    Right.SUBSCRIBE: _subscribe,
    Right.CANCEL: _cancel,
    Right.VOTE: _vote,
    Right.REQUEUE: _requeue,
    Right.ARCHIVE: _archive,
    Right.SECRET_SET: _secret_set,
    Right.SECRET_LIST: _secret_list,
    Right.MANAGE_MEMBERS: _manage_members,
    Right.CONFIGURE: _configure,
    Right.TOKEN_ISSUE: _token_issue,
    Right.TOKEN_REVOKE: _token_revoke,
}


def _member_of(user: Any, tenant: Tenant | int) -> tuple[_Member | None, bool]:
    """The membership (or None) and whether the user is active, read fresh from the database
    (an open socket's user object may be older than a deactivation)."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    row = (
        Membership.objects.filter(user_id=user.pk, tenant_id=tenant_id)
        .values_list("role", "can_submit_on_behalf", "role_since", "user__is_active")
        .first()
    )
    if row is None:
        return None, True
    role, on_behalf, role_since, active = row
    return _Member(tenant, role, on_behalf, role_since), bool(active)


MemberRead = tuple[_Member | None, bool]


def membership_known(
    *,
    tenant: Tenant | int,
    role: str | None,
    active: bool,
    can_submit_on_behalf: bool = False,
    role_since: datetime | None = None,
) -> MemberRead:
    """A membership another statement already read, in the form :func:`decide` takes: the
    worker's claim (the actor's role and whether the account is active, with the execution),
    the submission's identity read (the whole membership, with the tenant and the freeze).
    ``role`` None: no membership in the tenant."""
    member = _Member(tenant, role, can_submit_on_behalf, role_since) if role is not None else None
    return member, active


def decide(
    user: Any,
    right: Right,
    *,
    tenant: Tenant | int | None = None,
    membership: MemberRead | None = None,
    execution: Execution | None = None,
    environment: str | None = None,
    action_class: str | None = None,
    assets: Iterable[Target] = (),
    on_behalf: bool = False,
    door: str = "",
    subject: Any = None,
) -> Decision:
    """May ``user`` exercise ``right`` in ``tenant`` (default: the execution's)? Never writes.

    ``environment``/``action_class`` default to the execution's. ``assets`` (one Target per
    step) is only iterated when a grant has to decide, so a lazy resolution costs nothing
    when the role already allows the work. ``on_behalf`` (SUBMIT): may ``user`` submit for
    another member (the service account's flag), not whether the plan is allowed.
    ``membership``: what :func:`membership_known` made of this user's membership in the tenant.
    ``door``: where the request came in; only ``"admin"`` changes an answer (:func:`every_tenant`).
    ``subject`` (MANAGE_MEMBERS, TOKEN_ISSUE, TOKEN_REVOKE): the account acted upon.
    """
    right = Right(right)
    if execution is not None and tenant is None:
        # The tenant row when already loaded (a reason names its slug), else its id.
        tenant = execution.tenant if Execution.tenant.is_cached(execution) else execution.tenant_id
    if execution is not None:
        environment = environment or execution.environment or None
        action_class = action_class or execution.action_class or None
    if tenant is None:
        raise ValueError("decide() needs a tenant or an execution")
    if user is None or not getattr(user, "is_authenticated", False):
        return _deny("not signed in", "anonymous")
    if not user.is_active:
        return _deny(f"user {user.get_username()!r} is deactivated", "inactive")
    binding = token_binding(user)
    if binding is not None and binding.tenant_id != (tenant if isinstance(tenant, int) else tenant.pk):
        # Answered like a non-member (404 at every door): the token reveals nothing of the tenant.
        return _deny(f"this API token is bound to another tenant than {_tenant_label(tenant)}", "not_member")
    member, active = membership if membership is not None else _member_of(user, tenant)
    if not active:
        return _deny(f"user {user.get_username()!r} is deactivated", "inactive")
    if every_tenant(user, right, door=door):
        return ALLOWED
    if member is None:
        return _deny(f"not a member of tenant {_tenant_label(tenant)}", "not_member")
    ask = _Ask(user, right, member, execution, environment, action_class, assets, on_behalf, subject)
    return RULES[right](ask)


def every_tenant(user: Any, right: Right, *, door: str = "") -> bool:
    """Does ``user`` hold ``right`` in every tenant, member or not? Only an active superuser,
    only in the Django admin (their all-tenant tool: tenants, their first admin, anything a
    tenant holds), and never a vote or a submission. Everywhere else a superuser acts
    through memberships like everyone (docs/contract.md#tenant-administration)."""
    return bool(
        door == ADMIN_DOOR
        and Right(right) in SUPERUSER_ADMIN_RIGHTS
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.is_superuser
    )


def tenant_ids_where(user: Any, right: Right, *, door: str = "") -> list[int]:
    """The tenants where ``user``'s role alone grants ``right`` (the set form of decide, for
    selectors and admin querysets). Submit and cancel depend on the work: not listed here."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    binding = token_binding(user)
    if every_tenant(user, right, door=door):
        tenants = Tenant.objects.all()
        if binding is not None:
            tenants = tenants.filter(pk=binding.tenant_id)
        return list(tenants.values_list("pk", flat=True))
    roles = ROLE_RIGHTS[Right(right)]
    memberships = Membership.objects.filter(user_id=user.pk, user__is_active=True, role__in=list(roles))
    if binding is not None:
        memberships = memberships.filter(tenant_id=binding.tenant_id)
    return list(memberships.values_list("tenant_id", flat=True))
