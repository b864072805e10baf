"""Admin for approvals: pending by default, scoped to the staff user's tenants, vote actions
through an intermediate page asking for a comment, votes inline, links to the execution."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from approvals.errors import VoteConflict, VoteForbidden, VoteInvalid
from approvals.models import Approval, ApprovalVote, ChangeFreeze, GateApproval, GateVote, StandardChange
from approvals.run_window import form_window
from approvals.services import approval_vote
from execution import policy
from execution.admin.scoped import TenantScopedAdmin, TenantScopedInline
from execution.enums import ApprovalState


class VoteInline(TenantScopedInline):
    obj_tenant_path = "execution__tenant_id"
    model: type[ApprovalVote | GateVote] = ApprovalVote
    extra = 0
    _columns = ("voter", "decision", "comment", "created_at")
    fields = _columns
    readonly_fields = _columns


class StateFilter(admin.SimpleListFilter):
    """``state``, pending unless the user picks another (or all)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s.value, s.label) for s in ApprovalState] + [("all", "All")]

    def choices(self, changelist: Any) -> Any:
        current = self.value() or ApprovalState.PENDING
        for value, title in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value() or ApprovalState.PENDING
        if value == "all":
            return queryset
        if value not in ApprovalState.values:  # the changelist's own "invalid filter" answer
            raise IncorrectLookupParameters(f"state: {value!r} is not an approval state")
        return queryset.filter(state=value)


@admin.register(Approval)
class ApprovalAdmin(TenantScopedAdmin):
    # Listed to every member (as REST lists them); each vote is decided (and a refusal
    # recorded) by the vote service: a superuser votes only through a membership.
    list_display = [
        "execution_link",
        "tenant",
        "state",
        "votes_so_far",
        "requester",
        "requested_at",
        "expires_at",
        "approver",
    ]
    list_filter = [StateFilter, "execution__tenant", ("requested_at", admin.DateFieldListFilter)]
    list_select_related = ["execution", "execution__tenant", "execution__actor", "approver"]
    search_fields = ["=execution__execution_id", "=approval_id"]
    ordering = ["expires_at"]
    _detail: tuple[str, ...] = (
        "approval_id",
        "execution_link",
        "state",
        "approval_level",
        "plan_hash",
        "requested_at",
        "expires_at",
        "responded_at",
        "approver",
        "approver_comment",
    )
    fields = _detail
    readonly_fields = _detail
    inlines = [VoteInline]
    actions = ["approve_selected", "reject_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Approval]:
        return super().get_queryset(request).prefetch_related("votes")

    @admin.display(description="execution", ordering="execution__created_at")
    def execution_link(self, obj: Approval) -> str:
        execution = obj.execution
        admin_url = reverse("admin:execution_execution_change", args=[execution.pk])
        name = (execution.plan_snapshot or {}).get("name") or execution.execution_id
        return format_html(
            '<a href="{}">{}</a> (<a href="/executions/{}/">live page</a>)',
            admin_url,
            name,
            execution.execution_id,
        )

    @admin.display(description="tenant", ordering="execution__tenant__slug")
    def tenant(self, obj: Approval) -> str:
        return obj.execution.tenant.slug

    @admin.display(description="requester")
    def requester(self, obj: Approval) -> str:
        return obj.execution.actor.get_username()

    @admin.display(description="votes")
    def votes_so_far(self, obj: Approval) -> str:
        approvals = sum(1 for v in obj.votes.all() if v.decision == ApprovalVote.Decision.APPROVE)
        return f"{approvals} of {obj.approval_level}"

    @admin.action(description="Approve selected approvals (asks for a comment)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Approval]) -> TemplateResponse | None:
        return self._vote(request, queryset, ApprovalVote.Decision.APPROVE, "approve_selected")

    @admin.action(description="Reject selected approvals (asks for a comment)")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Approval]) -> TemplateResponse | None:
        return self._vote(request, queryset, ApprovalVote.Decision.REJECT, "reject_selected")

    def _vote_form(
        self, request: HttpRequest, queryset: QuerySet[Approval], decision: str, action: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": f"{decision.title()} approvals",
            "opts": self.model._meta,
            "approvals": list(queryset),
            "decision": decision,
            "comment_required": decision == ApprovalVote.Decision.REJECT,
            # A pre-run approval may be given for a run window (docs/approvals.md#run-windows).
            "window_allowed": decision == ApprovalVote.Decision.APPROVE and self.model is Approval,
            "window_start": request.POST.get("window_start", ""),
            "window_end": request.POST.get("window_end", ""),
            "action": action,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "approvals/admin_vote_confirm.html", context)

    def _vote(
        self, request: HttpRequest, queryset: QuerySet[Approval], decision: str, action: str
    ) -> TemplateResponse | None:
        if request.POST.get("confirm") != "yes":
            return self._vote_form(request, queryset, decision, action)
        comment = request.POST.get("comment", "").strip()[:2000]
        if decision == ApprovalVote.Decision.REJECT and not comment:
            # Asked again, nothing recorded: the service would refuse each one the same way.
            self.message_user(request, "A rejection needs a comment saying why.", messages.ERROR)
            return self._vote_form(request, queryset, decision, action)
        try:
            window = form_window(request.POST.get("window_start", ""), request.POST.get("window_end", ""))
        except VoteInvalid as invalid:
            self.message_user(request, f"Run window: {invalid.reason}.", messages.ERROR)
            return self._vote_form(request, queryset, decision, action)
        for approval in queryset:
            try:
                result = approval_vote(
                    approval=approval, voter=request.user, decision=decision, comment=comment, window=window
                )
            except VoteInvalid as invalid:  # the window is refused for this one, nothing recorded
                self.message_user(
                    request,
                    f"{approval.execution.execution_id}: vote not recorded: "
                    f"{invalid.field}: {invalid.reason}",
                    messages.ERROR,
                )
                continue
            except (VoteForbidden, VoteConflict) as refused:
                self.message_user(
                    request,
                    f"{approval.execution.execution_id}: vote refused: {refused.reason}",
                    messages.ERROR,
                )
                continue
            window_text = (
                f", run window {result.run_after.isoformat()} to {result.run_before.isoformat()}"
                if isinstance(result, Approval) and result.run_after and result.run_before
                else ""
            )
            self.message_user(
                request,
                f"{approval.execution.execution_id}: {decision} recorded; approval {result.state}, "
                f"execution {result.execution.status}{window_text}",
                messages.SUCCESS,
            )
        return None


class GateVoteInline(VoteInline):
    model = GateVote


@admin.register(GateApproval)
class GateApprovalAdmin(ApprovalAdmin):
    """Approvals of gate steps inside running plans (docs/approvals.md#gates): listed and
    decided like pre-run approvals, through the same vote service."""

    list_display = [*ApprovalAdmin.list_display[:1], "step_index", *ApprovalAdmin.list_display[1:]]
    _detail = (
        *ApprovalAdmin._detail[:3],
        "step_index",
        "approvers",
        "message",
        "hold_locks",
        *ApprovalAdmin._detail[3:],
    )
    fields = _detail
    readonly_fields = _detail
    inlines = [GateVoteInline]


@admin.register(ChangeFreeze)
class ChangeFreezeAdmin(TenantScopedAdmin):
    """Change freezes (docs/approvals.md#freezes): a tenant's admins keep their own."""

    view_right = edit_right = policy.Right.CONFIGURE
    list_display = ["tenant", "environment", "starts_at", "ends_at", "effect", "approval_level", "reason"]
    list_filter = ["tenant", "environment", "effect"]
    search_fields = ["tenant__slug", "reason"]
    ordering = ["-starts_at"]


@admin.register(StandardChange)
class StandardChangeAdmin(TenantScopedAdmin):
    """Standard changes (docs/approvals.md#standard-changes). Saving a change of a rule saves
    a new version and retires the old one (votes name the version that gave them)."""

    view_right = edit_right = policy.Right.CONFIGURE
    list_display = ["name", "version", "tenant", "environment", "action_class", "max_targets", "active"]
    list_filter = ["tenant", "environment", "active"]
    search_fields = ["tenant__slug", "name"]
    readonly_fields = ["version", "created_at"]

    def save_model(self, request: HttpRequest, obj: StandardChange, form: Any, change: bool) -> None:
        if change:
            with transaction.atomic():
                # The version as it was stays, retired, with the votes it gave; the rule keeps
                # its id and goes on as the next version.
                archived = StandardChange.objects.select_for_update().get(pk=obj.pk)
                latest = (
                    StandardChange.objects.filter(tenant_id=archived.tenant_id, name=archived.name)
                    .order_by("-version")
                    .values_list("version", flat=True)
                    .first()
                )
                obj.version = (latest or 0) + 1
                StandardChange.objects.filter(pk=obj.pk).update(version=obj.version)
                archived.pk = None
                archived.active = False
                archived.save()
                ApprovalVote.objects.filter(standard_change_id=obj.pk).update(standard_change=archived)
                super().save_model(request, obj, form, change)
            return
        super().save_model(request, obj, form, change)
