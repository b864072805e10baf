"""Admin for the built-in asset inventory and the tenants' read-only command rules."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from execution.admin.input import CheckedModelAdmin
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
class AssetAdmin(CheckedModelAdmin):
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

    def save_model(self, request: HttpRequest, obj: Asset, form: Any, change: bool) -> None:
        obj.validate_editor(request.user)  # the rail holds even if a form bypassed clean()
        super().save_model(request, obj, form, change)


@admin.register(ReadOnlyCommandRule)
class ReadOnlyCommandRuleAdmin(CheckedModelAdmin):
    list_display = ["pattern", "tenant", "description", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["pattern", "description"]
