"""URL map. Each include is owned by one area: API, approvals, pages, monitoring."""

from django.contrib import admin
from django.contrib.staticfiles.views import serve as static_serve
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("approvals.api_urls")),
    path("api/v1/", include("execution.api.urls")),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include("monitoring.urls")),
    path("", include("approvals.urls")),
    path("", include("execution.pages.urls")),
]

# daphne serves no static files: Django serves the few small ones the pages and the admin
# use, from the apps' static/ directories (a reverse proxy can take over in production).
urlpatterns.append(re_path(r"^static/(?P<path>.*)$", static_serve, {"insecure": True}))  # type: ignore[arg-type]
