"""Admin for approvals and their votes (vote actions come with the approvals issue)."""

from __future__ import annotations

from django.contrib import admin

from approvals.models import Approval, ApprovalVote
from execution.admin.executions import ReadOnlyAdminMixin


class VoteInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ApprovalVote
    extra = 0
    _columns = ("voter", "decision", "comment", "created_at")
    fields = _columns
    readonly_fields = _columns


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["execution", "state", "approval_level", "requested_at", "expires_at", "approver"]
    list_filter = ["state", "execution__tenant", ("requested_at", admin.DateFieldListFilter)]
    search_fields = ["=execution__execution_id"]
    inlines = [VoteInline]


@admin.register(ApprovalVote)
class ApprovalVoteAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["approval", "voter", "decision", "created_at"]
    list_filter = ["decision", ("created_at", admin.DateFieldListFilter)]
