"""Tenants, memberships with roles (docs/contract.md#rbac), fine-grained grants and the RBAC audit log."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from execution.enums import ActionClass, Environment, Role


class Tenant(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "tenants"
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    # A service account may submit on behalf of members of this tenant (docs/contract.md#submission).
    can_submit_on_behalf = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Since when the membership holds its role (approver and admin count as one here: both
    # vote). Four eyes: a vote counts only from a voter whose voting role predates the
    # execution's submission (docs/security.md#four-eyes). Moved by the members service.
    role_since = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "tenant_memberships"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_tenant_user"),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class AccessGrant(models.Model):
    """An optional fine-grained grant: who may run which action class where (docs/contract.md#rbac)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE)
    asset_pattern = models.CharField(max_length=255, blank=True, help_text="fnmatch pattern on hostname")
    asset_tag = models.CharField(max_length=100, blank=True)
    action_class = models.CharField(max_length=16, choices=ActionClass.choices, blank=True)
    environment = models.CharField(max_length=16, choices=Environment.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "rbac_grants"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | models.Q(group__isnull=False),
                name="grant_has_subject",
            )
        ]


class AuditLog(models.Model):
    """Denials and other security-relevant decisions where no execution exists yet."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    event_type = models.CharField(max_length=64)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "audit_log"
        ordering = ["-id"]
