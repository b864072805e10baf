"""Admin for the built-in asset inventory."""

from __future__ import annotations

from django.contrib import admin

from execution.models import Asset


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
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
