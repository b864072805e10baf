"""The world and the tools of the admin walker (test_walker.py).

Two tenants: ``alpha`` with its admin Alice (staff, and every model permission Django has:
the worst case, since scoping must not rest on model permissions), and ``bravo-zq`` with its
own admin. Every row the walker makes is made by the model's factory in tests/factories.py
(``<Model>Factory``), in the tenant given by following the model's foreign keys — found here
independently of the product's own ``tenant_lookup``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Model
from django.forms import ModelChoiceField, MultiWidget
from django.test import Client

from execution.enums import Role
from execution.models import (
    AccessGrant,
    Asset,
    AuditLog,
    DeadLetterArchive,
    ExecutionEvent,
    Tenant,
    TimeoutPolicy,
    WorkerHeartbeat,
)
from tests import factories
from tests.factories import MembershipFactory, TenantFactory, UserFactory

OUR_APPS = {"execution", "approvals", "monitoring"}
BRAVO = "bravo-zq"  # B's slug: must appear on no page Alice opens
# The installation's things, though some carry a tenant id: superusers only. Every other model
# of ours with an admin is held by a tenant and needs a TenantScopedAdmin.
SUPERUSER_ONLY = {Tenant, TimeoutPolicy, WorkerHeartbeat, DeadLetterArchive}


def superuser_only(model: type[Model]) -> bool:
    return model in SUPERUSER_ONLY or model._meta.app_label not in OUR_APPS


def tenant_route(model: type[Model], depth: int = 3) -> str | None:
    """The lookup from ``model`` to its tenant: a ``tenant`` key first, then foreign keys
    (``execution__tenant``), then a kept ``tenant_id`` column; None when nothing leads there."""
    fields = model._meta.concrete_fields
    if model is Tenant:
        return "pk"
    if any(f.name == "tenant" and f.related_model is Tenant for f in fields):
        return "tenant"
    if depth:
        for field in fields:
            related = field.related_model
            if (field.many_to_one or field.one_to_one) and related not in (None, model, get_user_model()):
                below = tenant_route(related, depth - 1)
                if below is not None:
                    return field.name if below == "pk" else f"{field.name}__{below}"
    if any(f.attname == "tenant_id" for f in fields):
        return "tenant_id"
    return None


def rows_of(model: type[Model], tenant: Tenant) -> Any:
    route = tenant_route(model)
    if route is None:
        return model._default_manager.none()
    return model._default_manager.filter(**{route: tenant.pk})


def _overrides(model: type[Model], tenant: Tenant) -> dict[str, Any]:
    """What a row needs to be editable by its tenant's admin: a remote asset (a local one
    is a superuser's), a grant to a member of the tenant (a form offers only those)."""
    if model is Asset:
        return {"connection_type": "ssh", "address": "192.0.2.10"}
    if model is AccessGrant:
        return {"user": tenant.memberships.exclude(role=Role.ADMIN).first().user}
    return {}


def make(model: type[Model], tenant: Tenant) -> Model:
    factory = getattr(factories, f"{model.__name__}Factory", None)
    if factory is None:
        pytest.fail(f"the walker needs {model.__name__}Factory in tests/factories.py")
    route = tenant_route(model)
    if route in (None, "pk"):
        return factory()  # type: ignore[no-any-return]
    where = {route: tenant.pk if route == "tenant_id" else tenant}
    return factory(**where, **_overrides(model, tenant))  # type: ignore[no-any-return]


@dataclass
class World:
    alpha: Tenant
    bravo: Tenant
    alice: Any  # admin of alpha, staff, every model permission
    bravo_admin: Any
    bravo_only: list[Any]  # users of bravo and of no tenant of Alice's

    def bravo_ids(self, model: type[Model]) -> set[str]:
        """What of ``model`` belongs to bravo alone: its tenant, its users, its rows."""
        if model is Tenant:
            return {str(self.bravo.pk)}
        if model is get_user_model():
            return {str(u.pk) for u in self.bravo_only}
        return {str(pk) for pk in rows_of(model, self.bravo).values_list("pk", flat=True)}


def world_build() -> World:
    alpha = TenantFactory(slug="alpha", name="Alpha")
    bravo = TenantFactory(slug=BRAVO, name="Bravo")
    alice = UserFactory(username="alice-alpha", is_staff=True)
    alice.user_permissions.add(*Permission.objects.all())
    MembershipFactory(tenant=alpha, user=alice, role=Role.ADMIN)
    MembershipFactory(tenant=alpha, user=UserFactory(username="al-operator"), role=Role.OPERATOR)
    bravo_admin = UserFactory(username="bob-bravo-zq", is_staff=True)
    MembershipFactory(tenant=bravo, user=bravo_admin, role=Role.ADMIN)
    bravo_operator = UserFactory(username="bea-bravo-zq")
    MembershipFactory(tenant=bravo, user=bravo_operator, role=Role.OPERATOR)
    return World(alpha, bravo, alice, bravo_admin, [bravo_admin, bravo_operator])


def client_for(user: Any) -> Client:
    client = Client()  # raises what a view raises: a 500 fails the test with its traceback
    client.force_login(user)
    return client


def fingerprint(tenant: Tenant) -> dict[tuple[str, Any], tuple[Any, ...]]:
    """Every row a tenant holds, field by field, but the records of refused attempts (audit
    rows, rbac_violation events), which a refusal is meant to leave."""
    out: dict[tuple[str, Any], tuple[Any, ...]] = {}
    for model in apps.get_models():
        if model is AuditLog or tenant_route(model) in (None, "pk"):
            continue
        rows = rows_of(model, tenant)
        if model is ExecutionEvent:
            rows = rows.exclude(event_type="rbac_violation")
        names = [f.attname for f in model._meta.concrete_fields]
        for values in rows.values_list(*names):
            out[(model._meta.label, values[0])] = values
    return out


def form_data(context: Any) -> dict[str, Any]:
    """The POST a browser would send for the page's admin form as it stands (inlines too)."""
    data: dict[str, Any] = {}
    forms = [context["adminform"].form]
    for inline in context.get("inline_admin_formsets", []):
        formset = inline.formset
        forms.append(formset.management_form)
        forms.extend(formset.forms)
    for form in forms:
        for bound in form:
            data.update(_posted(bound))
    return data


def _posted(bound: Any) -> dict[str, Any]:
    value = bound.value()
    name = bound.html_name
    widget = bound.field.widget
    if isinstance(widget, MultiWidget):
        parts = widget.decompress(value)
        return {f"{name}_{i}": "" if p is None else str(p) for i, p in enumerate(parts)}
    if isinstance(value, bool):
        return {name: "on"} if value else {}
    if value is None:
        return {name: ""}
    if isinstance(value, list | tuple):
        return {name: [str(v) for v in value]}
    return {name: str(value)}


def choice_fields(context: Any) -> list[tuple[str, ModelChoiceField]]:
    """Every model choice of the page's form and its inline forms."""
    forms = [context["adminform"].form]
    for inline in context.get("inline_admin_formsets", []):
        forms.extend([inline.formset.empty_form, *inline.formset.forms])
    return [
        (f"{form.prefix or ''}{name}", field)
        for form in forms
        for name, field in form.fields.items()
        if isinstance(field, ModelChoiceField)
    ]


def swapped_to_bravo(world: World, data: dict[str, Any], context: Any) -> dict[str, Any]:
    """``data`` with every model choice of the form pointing at bravo's counterpart."""
    form = context["adminform"].form
    out = dict(data)
    for name, field in form.fields.items():
        if not isinstance(field, ModelChoiceField):
            continue
        theirs = sorted(world.bravo_ids(field.queryset.model))
        if theirs:
            key = form.add_prefix(name)
            out[key] = theirs if isinstance(out.get(key), list) else theirs[0]
    return out
