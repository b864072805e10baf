"""RBAC of docs/contract.md#rbac: memberships and roles, optional grants, strict by default.

Roles: viewer reads; operator submits read/modify in dev and staging; deployer adds deploy
and prod; approver votes; admin may do everything in its tenant (incl. DLQ requeue).
Grants (``AccessGrant``) *add* rights to a member: a step is allowed when the role allows
it or a grant of the user (or one of their groups) matches its environment, action class
(a grant covers its class and the lower ones) and asset (hostname pattern or tag).
With ``RBAC_STRICT`` off, role limits on environment/action class only write a
``rbac_warning`` audit row instead of refusing; membership is always required.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings

from execution.enums import ACTION_CLASS_RANK, ActionClass, Environment, Role
from execution.models import AccessGrant, AuditLog, Execution, Membership, Tenant

READ_ROLES = frozenset(Role.values)
SUBMIT_ROLES = frozenset({Role.OPERATOR, Role.DEPLOYER, Role.ADMIN})


@dataclass(frozen=True)
class StepRight:
    """What one step needs: its environment, action class and resolved target."""

    environment: str
    action_class: str
    hostname: str = ""
    tags: tuple[str, ...] = ()


def membership_of(*, user: Any, tenant: Tenant | int) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return Membership.objects.filter(user_id=user.pk, tenant_id=tenant_id).first()


def role_allows(*, role: str, environment: str, action_class: str) -> bool:
    """The role table of docs/contract.md#rbac for submitting (and cancelling) work."""
    if role in (Role.ADMIN, Role.DEPLOYER):
        return True
    if role == Role.OPERATOR:
        return environment in (Environment.DEV, Environment.STAGING) and action_class in (
            ActionClass.READ,
            ActionClass.MODIFY,
        )
    return False


def _grant_matches(grant: AccessGrant, right: StepRight) -> bool:
    if grant.environment and grant.environment != right.environment:
        return False
    if (
        grant.action_class
        and ACTION_CLASS_RANK[ActionClass(grant.action_class)]
        < ACTION_CLASS_RANK[ActionClass(right.action_class)]
    ):
        return False
    if grant.asset_pattern and not (right.hostname and fnmatchcase(right.hostname, grant.asset_pattern)):
        return False
    return not (grant.asset_tag and grant.asset_tag not in right.tags)


def grants_of(*, user: Any, tenant: Tenant | int) -> list[AccessGrant]:
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    group_ids = list(user.groups.values_list("pk", flat=True))
    return list(
        AccessGrant.objects.filter(tenant_id=tenant_id).filter(
            models_q_user_or_groups(user_id=user.pk, group_ids=group_ids)
        )
    )


def models_q_user_or_groups(*, user_id: int, group_ids: list[int]) -> Any:
    from django.db.models import Q

    return Q(user_id=user_id) | Q(group_id__in=group_ids)


def rbac_check_submit(
    *, user: Any, tenant: Tenant, rights: list[StepRight], membership: Membership | None = None
) -> str | None:
    """None when ``user`` may run every step, else the reason (the first refused step).
    ``membership``: the user's membership in ``tenant`` when the caller already read it."""
    membership = membership if membership is not None else membership_of(user=user, tenant=tenant)
    if membership is None:
        return f"not a member of tenant {tenant.slug!r}"
    grants: list[AccessGrant] | None = None
    for index, right in enumerate(rights):
        if membership.role in SUBMIT_ROLES and role_allows(
            role=membership.role, environment=right.environment, action_class=right.action_class
        ):
            continue
        if grants is None:
            grants = grants_of(user=user, tenant=tenant)
        if any(_grant_matches(g, right) for g in grants):
            continue
        reason = (
            f"role {membership.role!r} may not run {right.action_class} steps in {right.environment}"
            f" (step {index})"
        )
        if not strict() and membership.role in SUBMIT_ROLES:
            rbac_audit(tenant=tenant, actor=user, reason=reason, event_type="rbac_warning")
            continue
        return reason
    return None


def rbac_check_on_behalf(*, submitter: Any, tenant: Tenant) -> str | None:
    """A service account may submit for members when its membership allows it
    (docs/contract.md#submission)."""
    membership = membership_of(user=submitter, tenant=tenant)
    if membership is None:
        return f"not a member of tenant {tenant.slug!r}"
    if not membership.can_submit_on_behalf:
        return "this account may not submit on behalf of other users"
    return None


def rbac_check_cancel(*, user: Any, execution: Execution) -> str | None:
    """Cancel needs the right to run the execution (its requester counts) or admin."""
    membership = membership_of(user=user, tenant=execution.tenant_id)
    if membership is None:
        return "not a member of this tenant"
    if membership.role == Role.ADMIN:
        return None
    if membership.role in SUBMIT_ROLES and role_allows(
        role=membership.role, environment=execution.environment, action_class=execution.action_class
    ):
        return None
    return f"role {membership.role!r} may not cancel {execution.action_class} work in {execution.environment}"


def rbac_check_requeue(*, user: Any, tenant_id: int) -> str | None:
    membership = membership_of(user=user, tenant=tenant_id)
    if membership is None:
        return "not a member of this tenant"
    if membership.role != Role.ADMIN:
        return f"role {membership.role!r} may not requeue dead letters (admin only)"
    return None


def strict() -> bool:
    return settings.RBAC_STRICT


def rbac_audit(
    *,
    tenant: Tenant | None,
    actor: Any,
    reason: str,
    event_type: str = "rbac_violation",
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """An audit row for a denial where no execution exists (yet)."""
    return AuditLog.objects.create(
        tenant=tenant,
        actor=actor if getattr(actor, "pk", None) else None,
        event_type=event_type,
        reason=reason,
        details=details or {},
    )


def rbac_violation_record(*, execution: Execution, actor: Any, reason: str, action: str) -> None:
    """An ``rbac_violation`` event on the execution a denied request was about."""
    from execution.services.events import event_record

    event_record(
        execution=execution,
        event_type="rbac_violation",
        actor=actor,
        details={"reason": reason, "action": action},
    )


def _rights_of(execution: Execution) -> list[StepRight]:
    steps = execution.steps.all().order_by("step_index")
    tags_by_asset: dict[str, tuple[str, ...]] = {}
    asset_ids = [s.target_asset_id for s in steps if s.target_asset_id.isdigit()]
    if asset_ids:
        from execution.models import Asset

        for asset in Asset.objects.filter(tenant_id=execution.tenant_id, pk__in=asset_ids):
            tags_by_asset[str(asset.pk)] = tuple(asset.tags or ())
    return [
        StepRight(
            environment=execution.environment,
            action_class=s.action_class,
            hostname=s.target_hostname,
            tags=tags_by_asset.get(s.target_asset_id, ()),
        )
        for s in steps
    ]


def rbac_recheck_before_start(*, execution: Execution) -> str | None:
    """The worker's re-check before an execution starts: None if allowed, else the reason.

    The actor must still hold the rights the API checked at submission (a revoked
    membership, a lowered role or a removed grant stop a queued execution).
    """
    actor = execution.actor
    if not actor.is_active:
        return f"actor {actor.get_username()!r} is deactivated"
    return rbac_check_submit(user=actor, tenant=execution.tenant, rights=_rights_of(execution))
