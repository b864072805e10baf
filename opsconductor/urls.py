"""URL map. Each include is owned by one area: API, approvals, pages, monitoring."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("approvals.api_urls")),
    path("api/v1/", include("execution.api.urls")),
    path("", include("monitoring.urls")),
    path("", include("approvals.urls")),
    path("", include("execution.pages.urls")),
]
