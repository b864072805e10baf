"""``/tenants/`` and ``/tenants/<slug>/members/``: tenant admins manage members, roles and
API tokens without being superusers (docs/contract.md#rbac, docs/contract.md#operator-console).
Other members see the list read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from execution import policy
from execution.enums import Role
from execution.models import ApiToken, Membership, Tenant
from execution.pages.access import page_require
from execution.selectors import tenant_ids_of
from execution.services.members import (
    MemberChangeRefused,
    api_token_revoke,
    api_token_rotate,
    membership_add,
    membership_remove,
    membership_set_role,
    token_manageable,
)


@login_required
def tenants_page(request: HttpRequest) -> HttpResponse:
    admin_of = set(policy.tenant_ids_where(request.user, policy.Right.MANAGE_MEMBERS))
    mine = list(Tenant.objects.filter(pk__in={*tenant_ids_of(request.user), *admin_of}).order_by("slug"))
    if len(mine) == 1:
        return redirect("members_page", slug=mine[0].slug)
    tenants = [{"tenant": t, "admin": t.pk in admin_of} for t in mine]
    return render(request, "members/tenants.html", {"tenants": tenants})


def _member_rows(tenant: Tenant, admin_of: set[int]) -> list[dict[str, Any]]:
    memberships = list(
        Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")
    )
    # Tokens are stored hashed (only their dates show): the newest per member, one query.
    token_created = dict(
        ApiToken.objects.filter(user_id__in=[m.user_id for m in memberships])
        .values("user_id")
        .annotate(newest=Max("created_at"))
        .values_list("user_id", "newest")
    )
    others = set(
        Membership.objects.filter(user_id__in=[m.user_id for m in memberships])
        .exclude(tenant_id__in=admin_of)
        .values_list("user_id", flat=True)
    )
    rows = []
    for m in memberships:
        rows.append(
            {
                "membership": m,
                "token_created": token_created.get(m.user_id),
                "token_manageable": m.user_id not in others,
            }
        )
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def members_page(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise Http404("no such tenant")
    admin_of = set(policy.tenant_ids_where(request.user, policy.Right.MANAGE_MEMBERS))
    is_admin = tenant.pk in admin_of
    if not is_admin:  # members read the list; another tenant is simply unknown (recorded)
        page_require(request, policy.Right.READ, what="tenant", tenant=tenant)
    new_token = ""
    status = 200
    if request.method == "POST":
        try:
            policy.require(request.user, policy.Right.MANAGE_MEMBERS, tenant=tenant, door="page")
        except policy.RightDenied as denied:
            messages.error(request, f"Refused: {denied.reason}.")
            status = 403
        else:
            try:
                new_token = _apply(request, tenant, admin_of)
            except MemberChangeRefused as refused:
                messages.error(request, f"Refused: {refused}")
                status = 400
            else:
                if not new_token:
                    return redirect("members_page", slug=tenant.slug)
    context = {
        "tenant": tenant,
        "is_admin": is_admin,
        "rows": _member_rows(tenant, admin_of),
        "roles": Role.values,
        "new_token": new_token,
    }
    response = render(request, "members/members.html", context, status=status)
    response["Cache-Control"] = "no-store"  # a freshly shown token must not be cached
    return response


def _membership(tenant: Tenant, request: HttpRequest) -> Membership:
    membership = (
        Membership.objects.filter(tenant=tenant, pk=request.POST.get("membership") or 0)
        .select_related("user")
        .first()
    )
    if membership is None:
        raise MemberChangeRefused("membership: no such member of this tenant")
    return membership


def _apply(request: HttpRequest, tenant: Tenant, admin_of: set[int]) -> str:
    """Carry out the POSTed action; returns a new token key to show once, else ''."""
    action = request.POST.get("action", "")
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
        )
        messages.success(request, f"{username} added as {role}.")
        return ""
    membership = _membership(tenant, request)
    username = membership.user.get_username()
    if action == "role":
        role = request.POST.get("role", "")
        membership_set_role(membership=membership, actor=actor, role=role)
        messages.success(request, f"{username} is now {role}.")
        return ""
    if action == "remove":
        membership_remove(membership=membership, actor=actor)
        messages.success(request, f"{username} removed from {tenant.slug}.")
        return ""
    if action in ("token-rotate", "token-revoke"):
        if not token_manageable(user=membership.user, admin_tenant_ids=admin_of):
            raise MemberChangeRefused(f"{username} is also a member of a tenant you do not administer")
        if action == "token-revoke":
            api_token_revoke(tenant=tenant, actor=actor, user=membership.user)
            messages.success(request, f"{username}'s API token revoked.")
            return ""
        key = api_token_rotate(tenant=tenant, actor=actor, user=membership.user)
        messages.success(request, f"New API token for {username}; it is shown once below.")
        return key
    raise MemberChangeRefused(f"action: unknown action {action!r}")
