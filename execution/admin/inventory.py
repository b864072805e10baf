"""Admin for the built-in asset inventory and the tenants' read-only command rules: tenant
configuration (the policy's CONFIGURE), scoped to the user's tenants."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from execution import policy
from execution.admin.scoped import TenantScopedAdmin
from execution.enums import ConnectionType
from execution.models import Asset, ReadOnlyCommandRule


class AssetForm(forms.ModelForm):  # type: ignore[type-arg]
    """The asset form knows who edits: only a superuser may create or edit a local asset.
    (The address rules are the model's ``clean``, which the form runs.)"""

    editor: Any = None

    class Meta:
        model = Asset
        fields = [
            "tenant",
            "hostname",
            "connection_type",
            "address",
            "port",
            "username",
            "tags",
            "credential_ref",
            "metadata",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            for name in ("connection_type", "address", "hostname"):  # the instance gets them later
                setattr(self.instance, name, cleaned.get(name, getattr(self.instance, name)))
            self.instance.validate_editor(self.editor)
        except ValidationError as exc:
            self.add_error(None, exc)
        return cleaned


@admin.register(Asset)
class AssetAdmin(TenantScopedAdmin):
    view_right = edit_right = policy.Right.CONFIGURE
    form = AssetForm
    list_display = [
        "hostname",
        "tenant",
        "connection_type",
        "address",
        "port",
        "credential_ref",
        "updated_at",
    ]
    list_filter = ["tenant", "connection_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["hostname", "address"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = cast(type[AssetForm], super().get_form(request, obj, change=change, **kwargs))
        form.editor = request.user
        if not request.user.is_superuser:
            # A tenant admin never sees the choice (the form's clean refuses it anyway).
            field = cast(forms.ChoiceField, form.base_fields["connection_type"])
            field.choices = [c for c in ConnectionType.choices if c[0] != ConnectionType.LOCAL]
        return form

    # A local asset is a superuser's to change (it runs commands on the worker host): its
    # tenant's admins see it, read-only.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._local_rule(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._local_rule(request, obj) and super().has_delete_permission(request, obj)

    def _local_rule(self, request: HttpRequest, obj: Asset | None) -> bool:
        return obj is None or not obj.is_local or bool(request.user.is_superuser)

    def save_model(self, request: HttpRequest, obj: Asset, form: Any, change: bool) -> None:
        obj.validate_editor(request.user)  # the rail holds even if a form bypassed clean()
        super().save_model(request, obj, form, change)


@admin.register(ReadOnlyCommandRule)
class ReadOnlyCommandRuleAdmin(TenantScopedAdmin):
    # A rule lowers the approval of the tenant's commands: its configuration, its admins.
    view_right = edit_right = policy.Right.CONFIGURE
    list_display = ["pattern", "tenant", "description", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["pattern", "description"]
