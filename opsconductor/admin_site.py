"""The admin site: every admin registered on it is tenant-scoped or for superusers only.

Our apps register admins built on ``TenantScopedAdmin`` or ``SuperuserOnlyAdmin``
(execution/admin/). Anything else registered here — the libraries' own admins (Django's
users and groups, django-q2's tasks and schedules, django-axes' attempts), or an admin of
ours built on neither base — is made superuser-only at registration: a staff user given
model permissions never reaches it, and a forged action post is a 400 there too. Deny by
default: an admin that forgot its scoping shows a tenant admin nothing (and the admin walker
test names it).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin


class OpsAdminSite(admin.AdminSite):
    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        from execution.admin.access import superuser_only
        from execution.admin.scoped import TenantScopedAdmin

        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, TenantScopedAdmin):
            admin_class = superuser_only(admin_class)
        super().register(model_or_iterable, admin_class, **options)
