"""``TenantScopedAdmin``: the one base of every admin over something a tenant holds.

Everything a page of such an admin shows or accepts is cut to the tenants where the
signed-in staff user holds the admin's right (``view_right`` to see, ``edit_right`` to add,
change, delete), as the policy answers it at the admin door:

- the changelist, search, date drill-down, list filters' choices and actions work on the
  scoped queryset (a filter on a relation lists only the values of visible rows);
- another tenant's object is a 404 by id (change, delete, history), recorded like a refusal;
- every foreign-key and many-to-many choice of a form (and an autocomplete) offers only the
  user's tenants, their users and their rows; a posted value from elsewhere is an invalid
  choice, and a row that names another tenant's row than its own is refused;
- a save or delete ``require``s ``edit_right`` again in the tenant (both tenants on a move).

``edit_right = None`` makes the rows read-only for everyone (worker-owned, append-only).
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest

from execution import policy
from execution.admin.access import ADMIN_DOOR, every_tenant, staff_tenant_ids
from execution.admin.input import CheckedModelAdmin
from execution.models import Tenant

MAX_PATH = 3  # foreign keys followed to find a model's tenant (step -> execution -> tenant)


def tenant_lookup(model: type[Model]) -> str | None:
    """The lookup from ``model`` to its tenant's id (``tenant_id``, ``execution__tenant_id``,
    ``pk`` for a tenant), or None when no tenant holds it (users, timeout policies)."""
    return _lookup(model, MAX_PATH)


def _lookup(model: type[Model], depth: int) -> str | None:
    if model is Tenant:
        return "pk"
    fields = model._meta.concrete_fields
    if any(f.attname == "tenant_id" for f in fields):  # a tenant FK or a kept tenant id column
        return "tenant_id"
    if depth == 0:
        return None
    for field in fields:
        related = field.related_model
        if not (field.many_to_one or field.one_to_one) or not isinstance(related, type):
            continue
        if related in (model, get_user_model()):
            continue
        below = _lookup(related, depth - 1)
        if below == "pk":
            return str(field.attname)  # a foreign key to the tenant under another name
        if below is not None:
            return f"{field.name}__{below}"
    return None


def tenant_id_of(obj: Any, lookup: str) -> int | None:
    value = obj
    for part in lookup.split("__"):
        value = getattr(value, "pk" if part == "pk" else part, None)
        if value is None:
            return None
    return int(value)


def choices_within(queryset: QuerySet[Any], tenant_ids: list[int] | None) -> QuerySet[Any]:
    """The rows of ``queryset`` a form may offer to someone acting in ``tenant_ids``
    (None: every tenant): tenants, their rows, their members' groups, and users: members of
    those tenants, and the accounts of no tenant that may become one (never staff or a
    superuser). Rows no tenant holds (a timeout policy) are offered as they are."""
    if tenant_ids is None:
        return queryset
    model = queryset.model
    if model is get_user_model():
        members = Q(memberships__tenant_id__in=tenant_ids)
        newcomers = Q(memberships__isnull=True, is_staff=False, is_superuser=False)
        return queryset.filter(members | newcomers).distinct()
    if model is Group:
        return queryset.filter(user__memberships__tenant_id__in=tenant_ids).distinct()
    lookup = tenant_lookup(model)
    if lookup is None:
        return queryset
    return queryset.filter(**{f"{lookup}__in": tenant_ids})


class ScopedAllValuesFieldListFilter(admin.AllValuesFieldListFilter):
    """Django's filter on a field across a relation (``execution__environment``) lists the
    values of every row of the related table; this one only those of the visible rows."""

    def __init__(
        self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any, field_path: str
    ):
        super().__init__(field, request, params, model, model_admin, field_path)
        visible = model_admin.get_queryset(request)
        self.lookup_choices = visible.distinct().order_by(field_path).values_list(field_path, flat=True)


class TenantScopedAdminMixin:
    """The scoping of :class:`TenantScopedAdmin`, for a ModelAdmin or an inline.

    ``tenant_path``: the lookup from the model to its tenant id (default: found by
    :func:`tenant_lookup`); ``obj_tenant_path``: the one from the object the
    ``has_*_permission`` methods receive, when that differs (an inline gets its parent).
    """

    model: Any  # provided by the ModelAdmin / InlineModelAdmin this is mixed into
    view_right: policy.Right = policy.Right.READ
    edit_right: policy.Right | None = None
    tenant_path: str = ""
    obj_tenant_path: str = ""
    # An AuditLog event written when a superuser opens an object's page (secrets, bodies).
    read_audit_event: str = ""

    # -- where the tenant is -------------------------------------------------------------
    def _tenant_path(self) -> str:
        path = self.tenant_path or tenant_lookup(self.model)
        if path is None:
            raise TypeError(f"{type(self).__name__}: {self.model.__name__} has no tenant")
        return path

    def _tenant_of(self, obj: Any) -> int | None:
        return tenant_id_of(obj, self.obj_tenant_path or self._tenant_path())

    def _row_tenant(self, obj: Any) -> int | None:
        return tenant_id_of(obj, self._tenant_path())

    # -- who may -------------------------------------------------------------------------
    def _may(self, request: HttpRequest, right: policy.Right | None, obj: Any = None) -> bool:
        if right is None:
            return False
        if every_tenant(request, right):
            return True
        allowed = staff_tenant_ids(request, right)
        return bool(allowed) and (obj is None or self._tenant_of(obj) in allowed)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may(request, self.view_right)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.view_right, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.edit_right, obj)  # obj: an inline's parent

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.edit_right, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.edit_right, obj)

    # -- what is listed and offered ------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        if every_tenant(request, self.view_right):
            return queryset  # all rows, those of no tenant (an audit row's) included
        return queryset.filter(**{f"{self._tenant_path()}__in": staff_tenant_ids(request, self.view_right)})

    def _choice_tenants(self, request: HttpRequest) -> list[int] | None:
        right = self.edit_right or self.view_right
        return None if every_tenant(request, right) else staff_tenant_ids(request, right)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        queryset = kwargs.get("queryset", db_field.remote_field.model._default_manager.all())
        kwargs["queryset"] = choices_within(queryset, self._choice_tenants(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        queryset = kwargs.get("queryset", db_field.remote_field.model._default_manager.all())
        kwargs["queryset"] = choices_within(queryset, self._choice_tenants(request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Django's filters list every row of a related table (every tenant's slug to a
        member of one): a relation becomes ``RelatedOnlyFieldListFilter``, a field across a
        relation :class:`ScopedAllValuesFieldListFilter` (both ask ``get_queryset``)."""
        out = []
        for entry in super().get_list_filter(request):  # type: ignore[misc]
            if isinstance(entry, str):
                if get_fields_from_path(self.model, entry)[-1].is_relation:
                    entry = (entry, admin.RelatedOnlyFieldListFilter)
                elif "__" in entry:
                    entry = (entry, ScopedAllValuesFieldListFilter)
            out.append(entry)
        return out

    # -- what is found by id -------------------------------------------------------------
    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if obj is None:
            # Not in the user's tenants (or nowhere): 404 either way, never "it exists";
            # recorded when it exists elsewhere.
            with contextlib.suppress(ValueError, ValidationError):
                hidden = self.model._default_manager.filter(pk=object_id).first()
                if hidden is not None:
                    self._record_hidden(request, hidden)
            raise Http404(f"no such {self.model._meta.verbose_name}")
        return obj

    def _record_hidden(self, request: HttpRequest, obj: Any) -> None:
        tenant_id = self._row_tenant(obj)
        if tenant_id is None:
            return
        with contextlib.suppress(policy.RightDenied):  # recorded; the row stays out of reach
            policy.require(request.user, self.view_right, tenant=tenant_id, door=ADMIN_DOOR)


class TenantScopedAdmin(TenantScopedAdminMixin, CheckedModelAdmin):
    """See the module's docstring. Set ``view_right``/``edit_right`` (and ``tenant_path``
    when the tenant is not found by following foreign keys)."""

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        # A member without the right in any tenant is refused here: recorded, then 403.
        user = request.user
        if user.is_active and user.is_staff and not staff_tenant_ids(request, self.view_right):
            from execution.models import Membership

            tenant_id = Membership.objects.filter(user_id=user.pk).values_list("tenant_id", flat=True).first()
            if tenant_id is not None:
                self._require(request, self.view_right, tenant_id)
        return super().changelist_view(request, extra_context)

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        """Rows posted to an action that the user cannot see are refused like at every door:
        recorded (an audit row) and never touched (Django drops them from the queryset)."""
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        try:
            visible = {str(pk) for pk in queryset.filter(pk__in=selected).values_list("pk", flat=True)}
            hidden = list(
                self.model._default_manager.filter(pk__in=[pk for pk in selected if pk not in visible])
            )
        except (ValueError, ValidationError):
            hidden = []  # not primary keys: CheckedModelAdmin answers 400
        for obj in hidden:
            self._record_hidden(request, obj)
        return super().response_action(request, queryset)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> Any:
        # A refused post is recorded before Django's own 403 (add: the posted tenant).
        if request.method == "POST" and self.edit_right is not None:
            if object_id:
                obj = self.get_object(request, object_id)
                if not self._may(request, self.edit_right, obj):
                    self._require(request, self.edit_right, self._row_tenant(obj))
            elif request.POST.get("tenant", "").isdigit():
                tenant_id = int(request.POST["tenant"])
                allowed = staff_tenant_ids(request, self.edit_right)
                # A tenant that does not exist is only an invalid choice (the form says so).
                if tenant_id not in allowed and Tenant.objects.filter(pk=tenant_id).exists():
                    self._require(request, self.edit_right, tenant_id)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change=change, **kwargs)
        return _same_tenant_form(form_class, self)

    def render_change_form(
        self,
        request: HttpRequest,
        context: Any,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        if obj is not None and self.read_audit_event and request.user.is_superuser:
            # The admin is a superuser's all-tenant tool; what they read of a tenant's
            # secrets and delivery bodies there is on that tenant's audit trail.
            opts = self.model._meta
            policy.rbac_audit(
                tenant=self._row_tenant(obj),
                actor=request.user,
                event_type=self.read_audit_event,
                reason=f"{request.user.get_username()} opened {opts.verbose_name} {obj} in the admin",
                details={"door": ADMIN_DOOR, "model": opts.label_lower, "object_id": str(obj.pk)},
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # -- saving and deleting -------------------------------------------------------------
    def _require(self, request: HttpRequest, right: policy.Right, tenant_id: int | None) -> None:
        if tenant_id is None:
            raise PermissionDenied("the row belongs to no tenant")
        try:
            policy.require(request.user, right, tenant=tenant_id, door=ADMIN_DOOR)
        except policy.RightDenied as denied:
            raise PermissionDenied(denied.reason) from None

    def _require_edit(self, request: HttpRequest, obj: Any) -> None:
        if self.edit_right is None:
            raise PermissionDenied("these rows are read-only")
        self._require(request, self.edit_right, self._row_tenant(obj))

    def require_save(self, request: HttpRequest, obj: Any, change: bool) -> None:
        """The policy's word on saving ``obj``, asked again whatever the form allowed; an
        admin whose ``save_model`` calls a service instead of ``obj.save()`` calls this."""
        if change:  # moving a row out of a tenant needs the right there too
            self._require_edit(request, type(obj)._default_manager.get(pk=obj.pk))
        self._require_edit(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.require_save(request, obj, change)
        super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._require_edit(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        if self.edit_right is None:
            raise PermissionDenied("these rows are read-only")
        for tenant_id in set(queryset.values_list(self._tenant_path(), flat=True)):
            self._require(request, self.edit_right, tenant_id)
        super().delete_queryset(request, queryset)


class TenantScopedInline(TenantScopedAdminMixin, admin.TabularInline):  # type: ignore[type-arg]
    """An inline of a tenant-scoped admin (steps of an execution, votes of an approval)."""


def _same_tenant_form(form_class: type[Any], model_admin: TenantScopedAdminMixin) -> type[Any]:
    """``form_class`` refusing a row whose other tenant-held rows are another tenant's
    (a schedule of tenant A naming a runbook of tenant B, though the user administers both)."""

    class SameTenantForm(form_class):  # type: ignore[misc, valid-type]
        def clean(self) -> Any:
            data = super().clean()
            cleaned = self.cleaned_data
            own = cleaned.get("tenant")
            own_id = own.pk if isinstance(own, Tenant) else model_admin._row_tenant(self.instance)
            for name, value in cleaned.items():
                if not isinstance(value, Model) or isinstance(value, Tenant):
                    continue
                lookup = tenant_lookup(type(value))
                theirs = tenant_id_of(value, lookup) if lookup else None
                if theirs is not None and own_id is not None and theirs != own_id:
                    self.add_error(name, "belongs to another tenant than this row")
            return data

    SameTenantForm.__name__ = form_class.__name__
    return SameTenantForm
