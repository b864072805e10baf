"""The admin walker (docs/security.md#what-a-tenant-admin-can-do): every registered ModelAdmin,
opened by Alice, a staff admin of tenant ``alpha`` holding every model permission Django
has, against the rows of tenant ``bravo-zq``: nothing of bravo is listed, offered in a
form, found by id, touched by an action, an inline edit or an autocomplete, or changed.

A new admin is walked by being registered: one over something a tenant holds that is not a
``TenantScopedAdmin`` (nor listed in walker.SUPERUSER_ONLY) fails the first test; each walk
needs the model's factory in tests/factories.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory

from tests import factories
from tests.execution.admin.walker import (
    BRAVO,
    SUPERUSER_ONLY,
    World,
    choice_fields,
    client_for,
    fingerprint,
    form_data,
    make,
    superuser_only,
    swapped_to_bravo,
    tenant_route,
    world_build,
)

REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)


def classification_problems(site: Any) -> list[str]:
    from execution.admin.access import SuperuserOnlyMixin
    from execution.admin.scoped import TenantScopedAdmin, TenantScopedAdminMixin

    problems = []
    for model, model_admin in site._registry.items():
        label, kind = model._meta.label, type(model_admin).__name__
        route = tenant_route(model)
        if superuser_only(model):
            if not isinstance(model_admin, SuperuserOnlyMixin):
                problems.append(f"{label}: {kind} must be superuser-only")
        elif route is None:
            problems.append(f"{label}: held by no tenant; list it in walker.SUPERUSER_ONLY or scope it")
        elif not isinstance(model_admin, TenantScopedAdmin):
            problems.append(f"{label}: held by a tenant ({route}) but {kind} is no TenantScopedAdmin")
        for inline in model_admin.inlines:
            scoped = issubclass(inline, TenantScopedAdminMixin)
            if tenant_route(inline.model) and not superuser_only(model) and not scoped:
                problems.append(f"{label}: inline {inline.__name__} is not tenant-scoped")
    return problems


def test_every_admin_is_tenant_scoped_or_superuser_only() -> None:
    assert classification_problems(admin.site) == []
    assert {m for m in REGISTERED if m in SUPERUSER_ONLY} == SUPERUSER_ONLY  # no stale entry


def test_an_admin_that_forgets_its_scoping_is_named() -> None:
    from approvals.models import ApprovalVote

    class Forgetful(admin.ModelAdmin):  # type: ignore[type-arg]
        pass

    admin.site.register(ApprovalVote, Forgetful)
    try:
        problems = classification_problems(admin.site)
    finally:
        admin.site.unregister(ApprovalVote)
    assert problems == [
        "approvals.ApprovalVote: held by a tenant (approval__execution__tenant) but "
        "SuperuserOnlyForgetful is no TenantScopedAdmin"
    ]


def _request(user: Any) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _url(model: Any, suffix: str = "") -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/{suffix}"


@pytest.mark.django_db
@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_a_tenant_admin_reaches_nothing_of_another_tenant(model: Any) -> None:
    world = world_build()
    client = client_for(world.alice)
    if superuser_only(model):
        _superuser_only_walk(world, client, model)
    else:
        _scoped_walk(world, client, model)


def _superuser_only_walk(world: World, client: Client, model: Any) -> None:
    assert _url(model) not in client.get("/admin/").content.decode()
    assert client.get(_url(model)).status_code == 403
    assert client.get(_url(model, "add/")).status_code == 403
    if model is get_user_model():
        obj = world.bravo_admin
    elif hasattr(factories, f"{model.__name__}Factory"):
        obj = make(model, world.bravo)
    else:  # a library's row (a django-q2 schedule), when there is one
        obj = model._default_manager.first()
    if obj is not None:
        for suffix in ("change/", "delete/", "history/"):
            assert client.get(_url(model, f"{quote(obj.pk)}/{suffix}")).status_code == 403, suffix


def _scoped_walk(world: World, client: Client, model: Any) -> None:
    model_admin = admin.site._registry[model]
    mine, theirs = make(model, world.alpha), make(model, world.bravo)
    before = fingerprint(world.bravo)

    page = client.get(_url(model))
    assert page.status_code == 200
    assert BRAVO not in page.content.decode()
    listed = {str(obj.pk) for obj in page.context["cl"].result_list}
    assert str(mine.pk) in listed and str(theirs.pk) not in listed
    _filters_offer_nothing_of_bravo(world, page.context["cl"])

    for suffix in ("change/", "delete/", "history/"):
        url = _url(model, f"{quote(theirs.pk)}/{suffix}")
        assert client.get(url).status_code == 404, suffix
        assert client.post(url, {"post": "yes"}).status_code == 404, suffix

    _forms_offer_nothing_of_bravo(world, client, model, model_admin, mine)
    _actions_touch_nothing_of_bravo(world, client, model, model_admin, theirs)
    _autocompletes_offer_nothing_of_bravo(world, client, model)
    assert fingerprint(world.bravo) == before


def _filters_offer_nothing_of_bravo(world: World, changelist: Any) -> None:
    for spec in changelist.filter_specs:
        for choice in spec.choices(changelist):
            assert BRAVO not in str(choice["display"]), spec.title
        field = getattr(spec, "field", None)
        if field is not None and field.is_relation:
            offered = {str(pk) for pk, _ in spec.lookup_choices}
            assert not offered & world.bravo_ids(field.related_model), spec.title


def _forms_offer_nothing_of_bravo(
    world: World, client: Client, model: Any, model_admin: Any, mine: Any
) -> None:
    request = _request(world.alice)
    add = client.get(_url(model, "add/"))
    if not model_admin.has_add_permission(request):
        assert add.status_code == 403
    change_url = _url(model, f"{quote(mine.pk)}/change/")
    change = client.get(change_url)
    assert change.status_code == 200
    pages = [change] + ([add] if add.status_code == 200 else [])
    for page in pages:
        assert BRAVO not in page.content.decode()
        for name, field in choice_fields(page.context):
            offered = {str(pk) for pk in field.queryset.values_list("pk", flat=True)}
            assert not offered & world.bravo_ids(field.queryset.model), name
    if not model_admin.has_change_permission(request, mine):
        return
    data = form_data(change.context)
    control = client.post(change_url, data)  # the form as it stands saves: the data is good
    assert control.status_code == 302, control.context and control.context["adminform"].form.errors
    attack = swapped_to_bravo(world, data, change.context)
    if attack == data:
        return
    swapped = {name for name in attack if attack[name] != data.get(name)}
    for url in (change_url, _url(model, "add/")):
        answer = client.post(url, attack)
        assert answer.status_code in (200, 403), url
        if answer.status_code == 200:
            assert swapped & set(answer.context["adminform"].form.errors), url


def _actions_touch_nothing_of_bravo(
    world: World, client: Client, model: Any, model_admin: Any, theirs: Any
) -> None:
    for action in model_admin.get_actions(_request(world.alice)):
        form = {
            "action": action,
            ACTION_CHECKBOX_NAME: [str(theirs.pk)],
            "index": 0,
            "confirm": "yes",
            "post": "yes",
            "comment": "walker",
        }
        answer = client.post(_url(model), form)
        assert answer.status_code in (200, 302), action
        assert BRAVO not in answer.content.decode(), action
    if model_admin.list_editable:
        form = {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-MIN_NUM_FORMS": "0",
            "form-MAX_NUM_FORMS": "1000",
            "form-0-id": str(theirs.pk),
            "_save": "Save",
        }
        for name in model_admin.list_editable:
            form[f"form-0-{name}"] = "99"
        # Django's own answer to a row outside the changelist's queryset: "list_editable
        # does not allow adding", a 400.
        assert client.post(_url(model), form).status_code == 400


def _autocompletes_offer_nothing_of_bravo(world: World, client: Client, model: Any) -> None:
    for source, source_admin in admin.site._registry.items():
        for name in source_admin.get_autocomplete_fields(_request(world.alice)):
            if source._meta.get_field(name).related_model is not model:
                continue
            answer = client.get(
                "/admin/autocomplete/",
                {
                    "app_label": source._meta.app_label,
                    "model_name": source._meta.model_name,
                    "field_name": name,
                },
            )
            if answer.status_code == 200:
                found = {row["id"] for row in answer.json()["results"]}
                assert not found & world.bravo_ids(model), (source, name)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model", [m for m in REGISTERED if not superuser_only(m)], ids=lambda m: m._meta.label
)
def test_a_superuser_sees_every_tenant_in_the_admin(model: Any) -> None:
    """The admin is a superuser's all-tenant tool: no membership needed there (and nowhere
    else: tests/execution/policy/test_superusers.py)."""
    world = world_build()
    mine, theirs = make(model, world.alpha), make(model, world.bravo)
    root = get_user_model().objects.create_user("root", is_staff=True, is_superuser=True)
    client = client_for(root)
    page = client.get(_url(model))
    assert page.status_code == 200
    listed = {str(obj.pk) for obj in page.context["cl"].result_list}
    assert {str(mine.pk), str(theirs.pk)} <= listed
    assert client.get(_url(model, f"{quote(theirs.pk)}/change/")).status_code == 200
