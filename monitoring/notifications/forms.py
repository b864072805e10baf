"""The subscription form, shared by the admin and the /notifications/ page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import validate_email

from execution.models import Tenant
from execution.outbound import url_problem
from monitoring.notifications.models import SUBSCRIBABLE, Channel, Kind, NotificationSubscription


class SubscriptionForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(choices=SUBSCRIBABLE, widget=forms.CheckboxSelectMultiple)
    # Write-only: never rendered back; empty keeps the current one (a new webhook gets a random one).
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,
        min_length=16,
        help_text="Webhook signing secret, write-only. Leave empty to keep it "
        "(a new webhook gets a random one, shown once).",
    )

    class Meta:
        model = NotificationSubscription
        fields = ["tenant", "name", "kinds", "channel", "destination", "environment", "is_active"]
        help_texts = {
            "destination": "E-mail: comma-separated addresses (approval requests always go to exactly "
            "the users who may vote). Webhook: the http(s) URL; its host must be on the outbound allow-list.",
            "environment": "Only executions of this environment; empty = every environment.",
        }

    def __init__(self, *args: Any, tenant_ids: set[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if tenant_ids is not None:
            self.fields["tenant"].queryset = Tenant.objects.filter(pk__in=tenant_ids)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant, name = data.get("tenant"), data.get("name")
        if tenant is not None and name:
            # The database refuses it too (notif_sub_tenant_name_unique); said here on the field.
            taken = NotificationSubscription.objects.filter(tenant=tenant, name=name).exclude(
                pk=self.instance.pk
            )
            if taken.exists():
                self.add_error("name", f"{tenant.slug} already has a subscription named {name!r}.")
        channel = data.get("channel")
        destination = (data.get("destination") or "").strip()
        kinds = data.get("kinds") or []
        if channel == Channel.WEBHOOK:
            # Read as requests sends it (the outbound guard's reading); whether the host is
            # allowed and where it resolves is decided at each delivery.
            problem = url_problem(destination)
            if problem:
                self.add_error("destination", f"A webhook needs an absolute http(s) URL: {problem}.")
        elif channel == Channel.EMAIL:
            addresses = [a.strip() for a in destination.split(",") if a.strip()]
            for address in addresses:
                try:
                    validate_email(address)
                except forms.ValidationError:
                    self.add_error("destination", f"{address!r} is not an e-mail address.")
            if not addresses and set(kinds) - {Kind.APPROVAL_REQUESTED}:
                self.add_error("destination", "E-mail for these kinds needs at least one address.")
            destination = ",".join(addresses)
        data["destination"] = destination
        return data
