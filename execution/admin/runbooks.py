"""Runbooks in the admin (docs/runbooks.md): a tenant's admins edit them here. The form
carries the latest version's parameters, template and level; saving a change of any of them
adds a version through the service (a version is never changed)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from execution import policy
from execution.admin.scoped import TenantScopedAdmin
from execution.runbooks.models import Runbook, RunbookSchedule
from execution.runbooks.services import runbook_version_add, version_problems

VERSION_FIELDS = ("parameters", "plan", "min_approval_level")


class RunbookForm(forms.ModelForm):  # type: ignore[type-arg]
    parameters = forms.JSONField(required=False, initial=dict, help_text="JSON Schema (docs/runbooks.md)")
    plan = forms.JSONField(help_text="the plan template; {{ params.NAME }} inside string values")
    min_approval_level = forms.IntegerField(min_value=0, max_value=3, initial=0)

    class Meta:
        model = Runbook
        fields = ["tenant", "slug", "name", "description", "tags"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        latest = self.instance.versions.first() if self.instance.pk else None
        if latest is not None:
            for name in VERSION_FIELDS:
                self.fields[name].initial = getattr(latest, name)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        tenant = cleaned.get("tenant") or (self.instance.tenant if self.instance.pk else None)
        if tenant is None or any(name not in cleaned for name in VERSION_FIELDS):
            return cleaned
        problems = version_problems(
            tenant=tenant,
            parameters=cleaned["parameters"] or {},
            plan=cleaned["plan"],
            min_approval_level=cleaned["min_approval_level"],
        )
        for problem in problems:
            field = next((n for n in VERSION_FIELDS if problem.path.startswith(n)), None)
            self.add_error(field, f"{problem.path}: {problem.message}")
        return cleaned


@admin.register(Runbook)
class RunbookAdmin(TenantScopedAdmin):
    view_right = edit_right = policy.Right.CONFIGURE
    form = RunbookForm
    list_display = ["slug", "name", "tenant", "owner", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["slug", "name", "description"]
    readonly_fields = ["owner", "version_history"]

    @admin.display(description="versions")
    def version_history(self, obj: Runbook) -> str:
        """Every version, newest first, read-only (no formset: a version is never changed)."""
        if obj.pk is None:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>v{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (v.number, v.min_approval_level, v.created_by or "-", v.created_at.strftime("%Y-%m-%d %H:%M"))
                for v in obj.versions.select_related("created_by")
            ),
        )
        return format_html(
            "<table><tr><th>version</th><th>approval level</th><th>by</th><th>at</th></tr>{}</table>"
            '<p><a href="/runbooks/{}/{}/">history with diffs</a></p>',
            rows,
            obj.tenant.slug,
            obj.slug,
        )

    def save_model(self, request: HttpRequest, obj: Runbook, form: Any, change: bool) -> None:
        if not change:
            obj.owner = request.user  # type: ignore[assignment]  # a signed-in staff user
        super().save_model(request, obj, form, change)
        latest = obj.versions.first()
        values = {name: form.cleaned_data[name] for name in VERSION_FIELDS}
        values["parameters"] = values["parameters"] or {}
        if latest is None or any(getattr(latest, n) != v for n, v in values.items()):
            runbook_version_add(runbook=obj, actor=request.user, door="admin", **values)


@admin.register(RunbookSchedule)
class RunbookScheduleAdmin(TenantScopedAdmin):
    """Schedules run as their owner (who made them); reactivating one a lost right paused
    clears the reason, and the owner's rights are asked again at its next fire."""

    view_right = edit_right = policy.Right.CONFIGURE
    list_display = ["name", "runbook", "tenant", "cron", "timezone", "owner", "active", "last_fire_at"]
    list_filter = ["tenant", "active"]
    search_fields = ["name"]
    fields = [
        "tenant",
        "runbook",
        "name",
        "cron",
        "timezone",
        "params",
        "version",
        "missed",
        "active",
        "owner",
        "paused_reason",
        "last_fire_at",
        "next_fires",
    ]
    readonly_fields = ["owner", "paused_reason", "last_fire_at", "next_fires"]

    @admin.display(description="next fire times (UTC)")
    def next_fires(self, obj: RunbookSchedule) -> str:
        from execution.runbooks.schedules import cron_problems, next_fire_times

        if obj.pk is None or cron_problems(obj.cron, obj.timezone):
            return "-"
        return ", ".join(t.strftime("%Y-%m-%d %H:%M") for t in next_fire_times(obj))

    def save_model(self, request: HttpRequest, obj: RunbookSchedule, form: Any, change: bool) -> None:
        if not change:
            obj.owner = request.user  # type: ignore[assignment]  # a signed-in staff user
        if obj.active:
            obj.paused_reason = ""
        super().save_model(request, obj, form, change)
