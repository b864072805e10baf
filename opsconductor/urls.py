"""URL map. Each include is owned by one area: API, approvals, pages, monitoring."""

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.views import serve as static_serve
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

urlpatterns = []
if settings.OIDC_ISSUER:
    # Single sign-on (docs/oidc.md); before the auth URLs: its logout also ends the session at
    # the provider. Imported only when on.
    from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCLogoutView

    from opsconductor.oidc import OidcAuthenticateView

    urlpatterns += [
        path("oidc/authenticate/", OidcAuthenticateView.as_view(), name="oidc_authentication_init"),
        path("oidc/callback/", OIDCAuthenticationCallbackView.as_view(), name="oidc_authentication_callback"),
        path("accounts/logout/", OIDCLogoutView.as_view(), name="logout"),
    ]
urlpatterns += [
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
