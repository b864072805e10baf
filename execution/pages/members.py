"""``/tenants/`` and ``/tenants/<slug>/members/``: tenant admins manage members, roles and
API tokens without being superusers; every member manages their own tokens there
(docs/contract.md#members-and-tokens). Rights are the policy's, asked by the services."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from execution import policy
from execution.enums import Role
from execution.models import ApiToken, Membership, Tenant
from execution.pages.access import page_require
from execution.selectors import tenant_ids_of
from execution.services.members import (
    MemberChangeRefused,
    membership_add,
    membership_remove,
    membership_set_role,
)
from execution.services.tokens import TokenRefused, api_token_create, api_token_revoke, api_tokens_of_tenant

EXPIRY_DAYS_MAX = 3650


@login_required
def tenants_page(request: HttpRequest) -> HttpResponse:
    admin_of = set(policy.tenant_ids_where(request.user, policy.Right.MANAGE_MEMBERS))
    mine = list(Tenant.objects.filter(pk__in={*tenant_ids_of(request.user), *admin_of}).order_by("slug"))
    if len(mine) == 1:
        return redirect("members_page", slug=mine[0].slug)
    tenants = [{"tenant": t, "admin": t.pk in admin_of} for t in mine]
    return render(request, "members/tenants.html", {"tenants": tenants})


def _token_holders(
    request: HttpRequest, tenant: Tenant, members: list[Membership], is_admin: bool
) -> list[Any]:
    """Whom the issue form offers: oneself (when a member), and for an admin the members the
    policy lets them issue a token for (never a staff user, a superuser or another tenant's)."""
    me = request.user
    member_ids = {m.user_id for m in members}
    holders = [me] if me.pk in member_ids else []
    if is_admin:
        reachable = set(policy.users_manageable_by(me).filter(pk__in=member_ids).values_list("pk", flat=True))
        holders += [m.user for m in members if m.user_id in reachable and m.user_id != me.pk]
    return [u for u in holders if u.pk == me.pk or not u.is_superuser]


@login_required
@require_http_methods(["GET", "POST"])
def members_page(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise Http404("no such tenant")
    is_admin = policy.decide(request.user, policy.Right.MANAGE_MEMBERS, tenant=tenant).allowed
    if not is_admin:  # members read the list; another tenant is simply unknown (recorded)
        page_require(request, policy.Right.READ, what="tenant", tenant=tenant)
    new_token: ApiToken | None = None
    new_key = ""
    status = 200
    if request.method == "POST":
        try:
            issued = _apply(request, tenant)
        except policy.RightDenied as denied:
            if denied.hidden:
                raise Http404("no such tenant") from None
            messages.error(request, f"Refused: {denied.reason}.")
            status = 403
        except (MemberChangeRefused, TokenRefused) as refused:
            messages.error(request, f"Refused: {refused}")
            status = 400
        else:
            if issued is None:
                return redirect("members_page", slug=tenant.slug)
            new_token, new_key = issued
    members = list(Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username"))
    context = {
        "tenant": tenant,
        "is_admin": is_admin,
        "members": members,
        "roles": Role.values,
        "tokens": api_tokens_of_tenant(tenant=tenant, user=None if is_admin else request.user),
        "holders": _token_holders(request, tenant, members, is_admin),
        "new_token": new_token,
        "new_key": new_key,
        "now": timezone.now(),
    }
    response = render(request, "members/members.html", context, status=status)
    response["Cache-Control"] = "no-store"  # a freshly shown token must not be cached
    return response


def _posted_id(request: HttpRequest, field: str) -> int | None:
    """A posted row id: digits only (a name or other text is no id, never a query's 500)."""
    raw = request.POST.get(field, "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _membership(tenant: Tenant, request: HttpRequest) -> Membership:
    membership_id = _posted_id(request, "membership")
    membership = (
        Membership.objects.filter(tenant=tenant, pk=membership_id).select_related("user", "tenant").first()
        if membership_id is not None
        else None
    )
    if membership is None:
        raise MemberChangeRefused("membership: no such member of this tenant")
    return membership


def _expires_at(raw: str) -> Any:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= EXPIRY_DAYS_MAX:
        raise TokenRefused(
            "expires_in_days", f"a whole number of days, 1 to {EXPIRY_DAYS_MAX} (blank: never)"
        )
    return timezone.now() + timedelta(days=int(raw))


def _issue(request: HttpRequest, tenant: Tenant) -> tuple[ApiToken, str]:
    user_id = _posted_id(request, "user")
    holder = (
        Membership.objects.filter(tenant=tenant, user_id=user_id).select_related("user").first()
        if user_id is not None
        else None
    )
    if holder is None:
        raise TokenRefused("user", "no such member of this tenant")
    issued = api_token_create(
        actor=request.user,
        tenant=tenant,
        user=holder.user,
        name=request.POST.get("name", ""),
        expires_at=_expires_at(request.POST.get("expires_in_days", "")),
        door="page",
    )
    messages.success(
        request,
        f"New API token {issued.token.name!r} for {holder.user.get_username()}; it is shown once below.",
    )
    return issued.token, issued.key


def _revoke(request: HttpRequest, tenant: Tenant) -> None:
    try:
        token_id = uuid.UUID(request.POST.get("token", ""))
    except ValueError:
        raise TokenRefused("token", "no such token in this tenant") from None
    token = ApiToken.objects.filter(tenant=tenant, token_id=token_id).select_related("user").first()
    if token is None:
        raise TokenRefused("token", "no such token in this tenant")
    api_token_revoke(actor=request.user, token=token, door="page")
    messages.success(request, f"API token {token.name!r} of {token.user.get_username()} revoked.")


def _apply(request: HttpRequest, tenant: Tenant) -> tuple[ApiToken, str] | None:
    """Carry out the POSTed action; returns a new token and its key to show once, else None."""
    action = request.POST.get("action", "")
    if action == "token-issue":
        return _issue(request, tenant)
    if action == "token-revoke":
        _revoke(request, tenant)
        return None
    if action not in ("add", "role", "remove"):
        raise MemberChangeRefused(f"action: unknown action {action!r}")
    # Member changes are an admin's: refused (and recorded) before any input is looked at.
    policy.require(request.user, policy.Right.MANAGE_MEMBERS, tenant=tenant, door="page")
    actor = request.user
    if action == "add":
        # Not cut to length: a name over 150 characters is refused with the reason, never stored shortened.
        username = request.POST.get("username", "").strip()
        role = request.POST.get("role", "")
        membership_add(
            tenant=tenant,
            actor=actor,
            username=username,
            role=role,
            password=request.POST.get("password", ""),
            door="page",
        )
        messages.success(request, f"{username} added as {role}.")
        return None
    membership = _membership(tenant, request)
    username = membership.user.get_username()
    if action == "role":
        role = request.POST.get("role", "")
        membership_set_role(membership=membership, actor=actor, role=role, door="page")
        messages.success(request, f"{username} is now {role}.")
        return None
    membership_remove(membership=membership, actor=actor, door="page")
    messages.success(request, f"{username} removed from {tenant.slug}.")
    return None
