"""Admin for the db secret store (write-only values) and the HTTP outbound allow-list."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from execution import policy
from execution.admin.scoped import TenantScopedAdmin
from execution.models import OutboundAllowRule, SecretAccess, SecretEntry
from execution.secrets.crypto import encrypt  # also registers the encryption-key check
from execution.secrets.store import secret_value_problem


class SecretEntryForm(forms.ModelForm):
    # Write-only: never rendered back (render_value=False); empty on edit keeps the old value.
    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,
        help_text="Write-only. Leave empty to keep the current value.",
    )

    class Meta:
        model = SecretEntry
        fields = ["tenant", "path", "description"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.instance.pk and not data.get("value"):
            self.add_error("value", "A new secret needs a value.")
        elif data.get("value") and secret_value_problem(data["value"]):
            self.add_error("value", secret_value_problem(data["value"]))
        return data


@admin.register(SecretEntry)
class SecretEntryAdmin(TenantScopedAdmin):
    view_right = policy.Right.SECRET_LIST
    edit_right = policy.Right.SECRET_SET
    read_audit_event = "admin_read_secret"
    form = SecretEntryForm
    list_display = ["path", "tenant", "description", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["path", "description"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: SecretEntry, form: Any, change: bool) -> None:
        value = form.cleaned_data.get("value")
        if value:
            # Encrypted before it reaches the row; the plaintext is dropped with the request.
            obj.ciphertext = encrypt(value)
        super().save_model(request, obj, form, change)


class OutboundAllowRuleForm(forms.ModelForm):
    """Knows who edits: only a superuser opens special addresses (the model's rule)."""

    editor: Any = None

    class Meta:
        model = OutboundAllowRule
        fields = ["tenant", "environment", "host_pattern", "opens_special", "description"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.instance.opens_special = bool(cleaned.get("opens_special", self.instance.opens_special))
        try:
            self.instance.validate_editor(self.editor)
        except ValidationError as exc:
            self.add_error(None, exc.messages)  # opens_special may not be a field of this form
        return cleaned


@admin.register(OutboundAllowRule)
class OutboundAllowRuleAdmin(TenantScopedAdmin):
    view_right = edit_right = policy.Right.CONFIGURE
    form = OutboundAllowRuleForm
    list_display = ["host_pattern", "tenant", "environment", "opens_special", "description", "created_at"]
    list_filter = ["tenant", "environment", "opens_special"]
    search_fields = ["host_pattern", "description"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if not request.user.is_superuser:
            kwargs["exclude"] = ["opens_special"]  # a tenant admin never sets it (clean refuses it too)
        form = cast(type[OutboundAllowRuleForm], super().get_form(request, obj, change=change, **kwargs))
        form.editor = request.user
        return form

    # A rule that opens special addresses is a superuser's (docs/security.md "Outbound
    # connections"): its tenant's admins see it, read-only.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._opening_rule(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._opening_rule(request, obj) and super().has_delete_permission(request, obj)

    def _opening_rule(self, request: HttpRequest, obj: OutboundAllowRule | None) -> bool:
        return obj is None or not obj.opens_special or bool(request.user.is_superuser)

    def save_model(self, request: HttpRequest, obj: OutboundAllowRule, form: Any, change: bool) -> None:
        obj.validate_editor(request.user)  # the rail holds even if a form bypassed clean()
        super().save_model(request, obj, form, change)


@admin.register(SecretAccess)
class SecretAccessAdmin(TenantScopedAdmin):
    """The audit of secret resolutions (docs/contract.md#secrets-and-masking): who, execution, step, path —
    never a value. Members read it on /audit/ too (the policy's READ)."""

    list_display = ["created_at", "tenant", "actor", "path", "usage", "execution_id", "step_index", "worker"]
    list_filter = ["tenant", "usage"]
    search_fields = ["path", "execution_id"]
