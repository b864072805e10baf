"""``execution_submit``: the docs/contract.md#submission pipeline (validate -> RBAC -> idempotency ->
classify ->
create -> route). Views and the ``submit`` command are thin adapters over it."""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from approvals.rules import freeze_apply
from execution.enums import (
    FINISHED_STATUSES,
    STEP_MAX_RETRIES_DEFAULT,
    ActionClass,
    ActorType,
    ExecutionMode,
    ExecutionStatus,
)
from execution.errors import DomainError
from execution.masking import mask_data
from execution.models import Execution, ExecutionStep, StoredPolicy, Tenant, TimeoutPolicy
from execution.models.policies import POLICY_FIELDS
from execution.plans import SubmissionInput, plan_hash, submission_validate
from execution.plans.targets import Resolved, plan_targets_resolve, step_targets_create
from execution.policy import Right, RightDenied, Target, decide, rbac_audit, require
from execution.policy.rules import MemberRead
from execution.services.classify import Classification, plan_classify
from execution.services.idempotency import idempotency_claim, idempotency_key_compute
from execution.services.immediate import execution_await
from execution.services.submit_insert import StepRow, execution_insert
from execution.services.submit_read import submission_read
from opsconductor.telemetry import submit_span, traceparent_parse


class SubmitDenied(DomainError):
    """RBAC refused the submission (403); an audit row was written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class SubmitOutcome:
    execution: Execution
    replayed: bool
    # The step rows, when the submission has them in hand (the answer needs no query).
    steps: list[ExecutionStep] | None = None
    # The change freeze in force that raised the approval level (the answer shows it).
    freeze: Any = None

    @property
    def finished(self) -> bool:
        """An immediate execution that ended while the request waited (answered 201)."""
        return self.execution.status in FINISHED_STATUSES


def _deny(*, tenant: Tenant | None, actor: Any, reason: str, details: dict[str, Any]) -> SubmitDenied:
    # Audit rows survive the refusal: written in their own (autocommit) statement.
    rbac_audit(tenant=tenant, actor=actor, reason=reason, details=details)
    return SubmitDenied(reason)


def _policy_targets(classes: list[str], resolved: list[list[Resolved]]) -> list[Target]:
    """Every resolved target of every step (a grant by tag must hold for each); a step
    without a target is one Target of its class."""
    out: list[Target] = []
    for cls, targets in zip(classes, resolved, strict=True):
        out.extend(Target(hostname=r.hostname, tags=r.tags, action_class=cls) for r in targets)
        if not targets:
            out.append(Target(action_class=cls))
    return out


def _actor_for(*, submitter: Any, tenant: Tenant | None, membership: MemberRead, inp: SubmissionInput) -> Any:
    """The account ``submitter`` submits for (``on_behalf_of``): refused unless the
    submitter's ``membership`` may submit on behalf of others and that account is a member."""
    details = {"tenant": inp.tenant, "on_behalf_of": inp.on_behalf_of}
    if tenant is None:
        raise _deny(
            tenant=None, actor=submitter, reason=f"not a member of tenant {inp.tenant!r}", details=details
        )
    _require_submit(submitter, tenant=tenant, membership=membership, on_behalf=True, details=details)
    actor = get_user_model().objects.filter(username=inp.on_behalf_of, memberships__tenant=tenant).first()
    if actor is None:
        raise _deny(
            tenant=tenant,
            actor=submitter,
            reason=f"{inp.on_behalf_of!r} is not a member of tenant {tenant.slug!r}",
            details=details,
        )
    return actor


def _require_submit(user: Any, *, details: dict[str, Any], **context: Any) -> None:
    try:
        require(user, Right.SUBMIT, door="submit", details=details, **context)
    except RightDenied as denied:
        raise SubmitDenied(denied.reason) from None


def execution_submit_body(
    *,
    submitter: Any,
    body: Any,
    idempotency_header: str | None = None,
    traceparent: str | None = None,
    wait: bool = True,
    runbook: dict[str, Any] | None = None,
) -> SubmitOutcome:
    """Validate a docs/contract.md#submission request body and submit it (see :func:`execution_submit`).

    ``traceparent``: the caller's W3C trace context; the execution continues that trace and,
    without a ``trace_id`` in the body, takes its trace id (docs/telemetry.md). ``wait``: an
    immediate execution is waited for (the API answers 201 with its result); a door that
    follows it live instead (the pages) passes False and answers at once. ``runbook``: the
    launch this plan was rendered by (slug, version, params), recorded with the execution."""
    with submit_span(traceparent=traceparent) as stored:
        inp = submission_validate(body)
        inp.trace_parent = stored
        inp.runbook = runbook
        parsed = traceparent_parse(stored)
        if parsed and not inp.trace_id:
            inp.trace_id = parsed[0]
        return _submit(submitter=submitter, inp=inp, idempotency_header=idempotency_header, wait=wait)


def execution_submit(
    *,
    tenant: Tenant | str,
    actor: Any,
    plan: dict[str, Any],
    approval_level: int | None = None,
    sla_class: str | None = None,
    priority: int | None = None,
    dry_run: bool = False,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    trace_id: str = "",
    parent_execution_id: uuid.UUID | str | None = None,
    on_behalf_of: str | None = None,
    idempotency_header: str | None = None,
    wait: bool = True,
    runbook: dict[str, Any] | None = None,
) -> SubmitOutcome:
    """Submit ``plan`` for ``actor`` in ``tenant``; returns the execution and whether it is a replay.
    ``wait``: see :func:`execution_submit_body`.

    Raises PlanInvalid (every problem with its field path), SubmitDenied (RBAC, audited),
    KeyReused (the idempotency key is held by an execution of another plan).
    Nothing is stored for a refused request except the audit row.
    """
    body: dict[str, Any] = {
        "tenant": tenant.slug if isinstance(tenant, Tenant) else tenant,
        "plan": plan,
        "approval_level": approval_level,
        "sla_class": sla_class,
        "priority": priority,
        "dry_run": dry_run,
        "tags": tags,
        "metadata": metadata,
        "trace_id": trace_id or None,
        "parent_execution_id": str(parent_execution_id) if parent_execution_id else None,
        "on_behalf_of": on_behalf_of,
    }
    return execution_submit_body(
        submitter=actor, body=body, idempotency_header=idempotency_header, wait=wait, runbook=runbook
    )


def _read_only_patterns(tenant: Tenant, plan: dict[str, Any]) -> list[str]:
    """The tenant's read-only command rules, read only when a command step is declared read."""
    from execution.runners.registry import canonical_type

    if not any(
        canonical_type(str(s.get("type"))) == "command" and s.get("action_class") == "read"
        for s in plan["steps"]
    ):
        return []
    return list(tenant.read_only_command_rules.values_list("pattern", flat=True))


def _submit(
    *, submitter: Any, inp: SubmissionInput, idempotency_header: str | None, wait: bool
) -> SubmitOutcome:
    # Membership before asset lookups: a 400 on an unknown asset must not reveal another
    # tenant's inventory. Unknown and foreign tenants get the same answer.
    # The tenant, the submitter's membership, the freeze in force and the plan as stored are
    # read at once; the membership serves both checks (and the on-behalf one), the freeze
    # applies after them.
    read = submission_read(submitter=submitter, tenant_slug=inp.tenant, plan=inp.plan)
    tenant = read.tenant
    if tenant is not None:
        inp.plan = read.plan
    membership: MemberRead | None = read.membership
    if not inp.on_behalf_of or inp.on_behalf_of == submitter.get_username():
        actor = submitter
    else:
        actor = _actor_for(submitter=submitter, tenant=tenant, membership=read.membership, inp=inp)
        membership = None  # the actor's own is read by decide()
    if tenant is None or not decide(actor, Right.SUBMIT, tenant=tenant, membership=membership):
        raise _deny(
            tenant=tenant,
            actor=submitter,
            reason=f"not a member of tenant {inp.tenant!r}",
            details={"tenant": inp.tenant},
        )
    assert tenant is not None
    # Fleet selectors become their concrete lists here, before the hash and the key are taken.
    resolved = plan_targets_resolve(tenant=tenant, plan=inp.plan)
    classification = plan_classify(
        plan=inp.plan,
        requested_level=inp.approval_level,
        sla_class=inp.sla_class,
        priority=inp.priority,
        read_only_patterns=_read_only_patterns(tenant, inp.plan),
    )
    _require_submit(
        actor,
        tenant=tenant,
        membership=membership,
        environment=inp.plan["environment"],
        action_class=classification.action_class,
        assets=_policy_targets(classification.step_action_classes, resolved),
        details={"plan_name": inp.plan.get("name"), "environment": inp.plan["environment"]},
    )
    # A freeze of the environment refuses (ChangeFrozen) or raises the level
    # (docs/approvals.md#freezes).
    freeze = read.freeze
    if freeze is not None:
        level = freeze_apply(freeze=freeze, level=classification.approval_level)
        classification = replace(classification, approval_level=level, freeze_id=freeze.pk)
    key = idempotency_key_compute(
        tenant=tenant, actor=actor, plan=inp.plan, dry_run=inp.dry_run, header=idempotency_header
    )
    for _attempt in range(5):
        try:
            outcome = _create(
                tenant=tenant,
                actor=actor,
                submitter=submitter,
                inp=inp,
                key=key,
                classification=classification,
                resolved=resolved,
            )
        except IntegrityError:
            # A concurrent identical request won the unique (tenant, idempotency_key) race;
            # the next round finds its committed row and replays it.
            continue
        if (
            wait
            and not outcome.replayed
            and outcome.execution.execution_mode == ExecutionMode.IMMEDIATE
            and outcome.execution.status == ExecutionStatus.QUEUED
        ):
            outcome.execution = execution_await(execution=outcome.execution)
            outcome.steps = None  # they ran meanwhile: the answer reads them again
        outcome.freeze = freeze
        return outcome
    raise DomainError("could not claim the idempotency key; retry the request")


# The submission's timeout policy and whether its idempotency key has a holder, in one read.
_POLICY_SQL = f"""SELECT {", ".join(POLICY_FIELDS)},
       EXISTS (SELECT 1 FROM executions WHERE tenant_id = %(tenant)s AND idempotency_key = %(key)s)
FROM timeout_policies WHERE sla_class = %(sla_class)s AND action_class = %(action_class)s"""  # noqa: S608


def _create(
    *,
    tenant: Tenant,
    actor: Any,
    submitter: Any,
    inp: SubmissionInput,
    key: str,
    classification: Classification,
    resolved: list[list[Resolved]],
) -> SubmitOutcome:
    with connection.cursor() as cursor:
        cursor.execute(
            _POLICY_SQL,
            {
                "tenant": tenant.pk,
                "key": key,
                "sla_class": classification.sla_class,
                "action_class": classification.action_class,
            },
        )
        row = cursor.fetchone()
    if row is None:
        raise TimeoutPolicy.DoesNotExist(
            f"no timeout policy for {classification.sla_class}/{classification.action_class}"
        )
    # The policy is fixed now (docs/contract.md#queue-and-workers): a later edit of the row changes only
    # later submissions.
    policy = StoredPolicy(*row[: len(POLICY_FIELDS)])
    direct = classification.approval_level == 0
    held = row[-1]
    # A fleet plan's target rows are written after its steps: in the same transaction, so a
    # worker never claims the execution before they exist.
    fleet = any(isinstance(step.get("targets"), list) for step in inp.plan["steps"])
    if direct and not held and not fleet:
        # The common case: one statement, its own transaction (or a savepoint in the caller's,
        # so that losing the key's race leaves the caller's transaction usable).
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            return _write(
                tenant=tenant,
                actor=actor,
                submitter=submitter,
                inp=inp,
                key=key,
                classification=classification,
                resolved=resolved,
                policy=policy,
            )
    with transaction.atomic():
        if held:
            # Only an existing holder is locked and examined (the unique index is the race
            # guard for a new key); a superseded one gives its key up in this transaction.
            holder = idempotency_claim(tenant=tenant, key=key, plan_digest=plan_hash(inp.plan))
            if holder is not None:
                return SubmitOutcome(execution=holder, replayed=True)
        return _write(
            tenant=tenant,
            actor=actor,
            submitter=submitter,
            inp=inp,
            key=key,
            classification=classification,
            resolved=resolved,
            policy=policy,
        )


def _write(
    *,
    tenant: Tenant,
    actor: Any,
    submitter: Any,
    inp: SubmissionInput,
    key: str,
    classification: Classification,
    resolved: list[list[Resolved]],
    policy: StoredPolicy,
) -> SubmitOutcome:
    # A level-0 plan is approved by the system and queued at once: the row is inserted in
    # its final state, its three transitions recorded by their events (docs/contract.md#state-machine).
    # Immediate plans run on a worker too (never in a web process), ahead of everything.
    direct = classification.approval_level == 0
    immediate = classification.execution_mode == ExecutionMode.IMMEDIATE
    metadata = dict(inp.metadata)
    if submitter.pk != actor.pk:
        metadata["submitted_by"] = submitter.get_username()
    execution = Execution(
        tenant=tenant,
        actor=actor,
        # Four eyes: the account that submitted for ``actor`` votes on it no more than they do.
        submitted_by=submitter if submitter.pk != actor.pk else None,
        idempotency_key=key,
        plan_snapshot=inp.plan,
        plan_hash=plan_hash(inp.plan),
        timeout_policy=policy.as_json(),
        execution_mode=classification.execution_mode,
        sla_class=classification.sla_class,
        approval_level=classification.approval_level,
        status=ExecutionStatus.QUEUED if direct else ExecutionStatus.PENDING_APPROVAL,
        previous_status=ExecutionStatus.APPROVED if direct else None,
        environment=inp.plan["environment"],
        action_class=classification.action_class,
        priority=classification.priority,
        dry_run=inp.dry_run,
        tags=inp.tags,
        metadata=metadata,
        trace_id=inp.trace_id,
        trace_parent=inp.trace_parent,
        parent_execution_id=inp.parent_execution_id,
        runbook=inp.runbook,
    )
    steps = [
        StepRow(
            name=step["name"],
            type=step["type"],
            # A fleet step's row names its first target (its targets are in the snapshot).
            asset_id=r[0].asset_id if r else "",
            hostname=r[0].hostname if r else "",
            action_class=classification.step_action_classes[index],
            # The step's own retries (docs/contract.md#truth), not the queue's attempts.
            max_retries=step.get(
                "max_retries",
                STEP_MAX_RETRIES_DEFAULT[ActionClass(classification.step_action_classes[index])],
            ),
            input_data=mask_data(step.get("params") or {}),
        )
        for index, (step, r) in enumerate(zip(inp.plan["steps"], resolved, strict=True))
    ]
    events: list[dict[str, Any]] = [
        {
            "event_type": "created",
            "actor": actor,
            "actor_type": ActorType.USER,
            "to_status": ExecutionStatus.PENDING_APPROVAL,
            "details": {
                "plan_name": inp.plan["name"],
                "environment": execution.environment,
                "action_class": execution.action_class,
                "sla_class": execution.sla_class,
                "execution_mode": execution.execution_mode,
                "approval_level": execution.approval_level,
                "steps": len(inp.plan["steps"]),
                "submitted_by": submitter.get_username(),
            },
        }
    ]
    if direct:
        events += [
            {
                "event_type": "approved",
                "from_status": ExecutionStatus.PENDING_APPROVAL,
                "to_status": ExecutionStatus.APPROVED,
                "details": {"reason": "approval level 0: approved by policy"},
            },
            {
                "event_type": "queued",
                "from_status": ExecutionStatus.APPROVED,
                "to_status": ExecutionStatus.QUEUED,
            },
        ]
    step_rows = execution_insert(
        execution=execution,
        steps=steps,
        events=events,
        policy=policy,
        queue_priority=1 if immediate else None,
    )
    step_targets_create(execution=execution, plan=inp.plan, steps=step_rows)
    if direct:
        return SubmitOutcome(execution=execution, replayed=False, steps=step_rows)
    from approvals.services.request import approval_request
    from approvals.services.standard import standard_change_apply, targets_of

    approval = approval_request(
        execution=execution, level=classification.approval_level, freeze_id=classification.freeze_id
    )
    # A standard change of the tenant may approve it at once (docs/approvals.md#standard-changes).
    standard_change_apply(execution=execution, approval=approval, targets=targets_of(resolved))
    execution.refresh_from_db()
    return SubmitOutcome(execution=execution, replayed=False)
