"""``approvals`` (docs/contract.md#data-model, docs/contract.md#approvals) and the votes kept beside it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from execution.enums import ActionClass, ApprovalState, Environment
from execution.fields import PgEnumField
from execution.models import Execution, Tenant


class ChangeFreeze(models.Model):
    """A change freeze of a tenant's environment (docs/approvals.md#freezes): between
    ``starts_at`` and ``ends_at`` a submission there is refused, or its approval level raised to
    at least ``approval_level``."""

    class Effect(models.TextChoices):
        REFUSE = "refuse", "refuse submissions"
        RAISE = "raise", "raise the approval level"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="change_freezes")
    environment = models.CharField(max_length=16, choices=Environment.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    effect = models.CharField(max_length=8, choices=Effect.choices, default=Effect.REFUSE)
    approval_level = models.PositiveSmallIntegerField(
        default=2, help_text="With effect 'raise': the level a submission needs at least (1-3)."
    )
    reason = models.CharField(max_length=200, help_text="Shown to submitters and approvers.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "change_freezes"
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="freeze_ends_after_start"
            ),
            models.CheckConstraint(
                condition=models.Q(approval_level__gte=1, approval_level__lte=3), name="freeze_level_1_3"
            ),
            models.CheckConstraint(
                condition=models.Q(effect__in=["refuse", "raise"]), name="freeze_effect_valid"
            ),
        ]
        indexes = [
            # Submission: WHERE tenant_id = ? AND environment = ? AND starts_at <= now AND ends_at > now.
            models.Index(fields=["tenant", "environment", "ends_at"], name="freezes_tenant_env_end"),
        ]

    def __str__(self) -> str:
        return f"freeze of {self.environment} {self.starts_at:%Y-%m-%d %H:%M}-{self.ends_at:%Y-%m-%d %H:%M}"

    def summary(self) -> dict[str, object]:
        """What the submit answer, the pages and the approval show of it."""
        return {
            "freeze_id": self.pk,
            "environment": self.environment,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "effect": self.effect,
            "approval_level": self.approval_level if self.effect == self.Effect.RAISE else None,
            "reason": self.reason,
        }


class StandardChange(models.Model):
    """A standard change (docs/approvals.md#standard-changes): an auto-approval rule of a
    tenant. A submission matching every field of an active rule is approved by it, with a
    vote recorded as the rule. Rules are versioned: an edit saves a new version (the old one
    is kept, inactive), and a vote names the version that gave it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="standard_changes")
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1, editable=False)
    active = models.BooleanField(default=True)
    plan_name_pattern = models.CharField(
        max_length=200, blank=True, default="", help_text="RE2, the whole plan name must match (empty: any)."
    )
    runbook_slug = models.CharField(max_length=100, blank=True, default="", help_text="Empty: any (or none).")
    runbook_version = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: any version.")
    environment = models.CharField(max_length=16, choices=Environment.choices)
    action_class = models.CharField(
        max_length=16, choices=ActionClass.choices, help_text="The highest action class the rule approves."
    )
    target_tags = models.JSONField(default=list, blank=True, help_text="Every target must carry all of them.")
    max_targets = models.PositiveIntegerField(default=1, help_text="Distinct targets at most.")
    window_start = models.TimeField(null=True, blank=True, help_text="UTC time of day the rule applies from.")
    window_end = models.TimeField(null=True, blank=True, help_text="UTC time of day the rule applies until.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "standard_changes"
        ordering = ["tenant_id", "name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name", "version"], name="standard_change_version_unique"
            ),
            models.CheckConstraint(
                condition=~models.Q(plan_name_pattern="") | ~models.Q(runbook_slug=""),
                name="standard_change_names_its_plans",
            ),
        ]

    def __str__(self) -> str:
        return f"standard change {self.name} v{self.version}"


class Approval(models.Model):
    approval_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    execution = models.OneToOneField(
        Execution,
        to_field="execution_id",
        db_column="execution_id",
        on_delete=models.CASCADE,
        related_name="approval",
    )
    approval_level = models.PositiveSmallIntegerField()
    plan_hash = models.CharField(max_length=64)
    # The change freeze that raised the level (docs/approvals.md#freezes): no standard change
    # applies to it.
    freeze = models.ForeignKey(
        ChangeFreeze, null=True, blank=True, on_delete=models.SET_NULL, related_name="approvals"
    )
    # The vote that completed the outcome.
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approver_comment = models.TextField(blank=True, default="")
    state = PgEnumField(
        enum_type="approval_state", choices=ApprovalState.choices, default=ApprovalState.PENDING
    )
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    # The run window approvers bound the approval to (docs/approvals.md#run-windows): the
    # execution waits queued until run_after and does not start after run_before.
    run_after = models.DateTimeField(null=True, blank=True)
    run_before = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "approvals"
        ordering = ["expires_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(approval_level__gte=1, approval_level__lte=3), name="approvals_level_1_3"
            ),
            models.CheckConstraint(
                condition=models.Q(plan_hash__regex=r"^[0-9a-f]{64}$"), name="approvals_hash_hex"
            ),
        ]
        indexes = [
            # Pending queue and expiry sweeper: WHERE state = 'pending' ORDER BY expires_at.
            models.Index(fields=["state", "expires_at"], name="approvals_state_expiry"),
        ]

    # What a gate approval has and a pre-run one has not (the doors read both alike).
    step_index: int | None = None
    message = ""

    def __str__(self) -> str:
        return f"approval {self.approval_id} ({self.state})"


class ApprovalVote(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"

    approval = models.ForeignKey(Approval, on_delete=models.CASCADE, related_name="votes")
    # A person, or (voter NULL) the standard change that approved it.
    voter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    standard_change = models.ForeignKey(
        StandardChange, null=True, blank=True, on_delete=models.PROTECT, related_name="votes"
    )

    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "approval_votes"
        ordering = ["created_at", "id"]
        constraints = [
            # Nobody votes twice, whatever the race.
            models.UniqueConstraint(fields=["approval", "voter"], name="votes_unique_voter"),
            models.CheckConstraint(
                condition=models.Q(decision__in=["approve", "reject"]), name="votes_decision_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(voter__isnull=False) ^ models.Q(standard_change__isnull=False),
                name="votes_by_a_person_or_a_rule",
            ),
        ]

    @property
    def voter_name(self) -> str:
        """Who voted: the person, or the standard change (name and version) that approved."""
        return self.voter.get_username() if self.voter is not None else str(self.standard_change)


class GateApproval(models.Model):
    """The approval of a gate step (``type: approval``) inside a running plan
    (docs/approvals.md#gates): the execution went back to ``pending_approval`` at step
    ``step_index``. Same shape and rules as :class:`Approval`; the pre-run approval stays the
    one ``approvals`` row of the execution, a gate's votes are kept in ``gate_votes``."""

    approval_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    execution = models.ForeignKey(
        Execution,
        to_field="execution_id",
        db_column="execution_id",
        on_delete=models.CASCADE,
        related_name="gate_approvals",
    )
    step_index = models.PositiveIntegerField()
    approval_level = models.PositiveSmallIntegerField()
    # The role a voter needs: "approver" (approvers and admins) or "admin" (admins only).
    approvers = models.CharField(max_length=16, default="approver")
    message = models.TextField(blank=True, default="")
    hold_locks = models.BooleanField(default=False)
    plan_hash = models.CharField(max_length=64)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approver_comment = models.TextField(blank=True, default="")
    state = PgEnumField(
        enum_type="approval_state", choices=ApprovalState.choices, default=ApprovalState.PENDING
    )
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "gate_approvals"
        ordering = ["expires_at"]
        constraints = [
            # A gate is decided once: a resumed attempt never opens a second approval for it.
            models.UniqueConstraint(fields=["execution", "step_index"], name="gate_approvals_one_per_step"),
            models.CheckConstraint(
                condition=models.Q(approval_level__gte=1, approval_level__lte=3),
                name="gate_approvals_level_1_3",
            ),
            models.CheckConstraint(
                condition=models.Q(approvers__in=["approver", "admin"]), name="gate_approvals_approvers_role"
            ),
        ]
        indexes = [
            # Pending queue and expiry sweeper: WHERE state = 'pending' ORDER BY expires_at.
            models.Index(fields=["state", "expires_at"], name="gate_approvals_state_expiry"),
        ]

    def __str__(self) -> str:
        return f"gate {self.step_index} approval {self.approval_id} ({self.state})"


class GateVote(models.Model):
    Decision = ApprovalVote.Decision

    approval = models.ForeignKey(GateApproval, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    decision = models.CharField(max_length=8, choices=ApprovalVote.Decision.choices)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "gate_votes"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["approval", "voter"], name="gate_votes_unique_voter"),
            models.CheckConstraint(
                condition=models.Q(decision__in=["approve", "reject"]), name="gate_votes_decision_valid"
            ),
        ]

    @property
    def voter_name(self) -> str:
        return str(self.voter.get_username())


AnyApproval = Approval | GateApproval


class ApprovalLinkUse(models.Model):
    """A signed approval link that was opened (approvals/links.py): its nonce, so it opens once.

    No foreign key to the approval or the execution: the row outlives neither's meaning (a
    link older than APPROVAL_LINK_MAX_AGE_SECONDS is refused by its signature anyway)."""

    nonce = models.CharField(max_length=32, primary_key=True)
    approval_id = models.UUIDField()
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    used_at = models.DateTimeField(auto_now_add=True, db_index=True)  # the hourly forget

    class Meta:
        db_table = "approval_link_uses"
