from django.contrib.admin.apps import AdminConfig


class OpsAdminConfig(AdminConfig):
    """``django.contrib.admin`` with our site as the default (opsconductor/admin_site.py)."""

    default_site = "opsconductor.admin_site.OpsAdminSite"
