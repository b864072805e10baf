"""ASGI entry point (daphne): HTTP through Django, WebSockets through Channels routers."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")
django.setup(set_prefix=False)

from opsconductor.daphne_requests import daphne_form_parsing_off  # noqa: E402
from opsconductor.status_phrases import status_phrases_fill  # noqa: E402
from opsconductor.telemetry import telemetry_setup  # noqa: E402

# daphne's status lines: "422 Unprocessable Entity", not "422 Unknown Status".
status_phrases_fill()
# Twisted parses no POST body into form fields daphne never reads (Django parses them).
daphne_form_parsing_off()

# Before the handler loads the middleware: Django's instrumentation adds its own.
telemetry_setup(role="web")

from opsconductor.asgi_pool import PooledASGIHandler  # noqa: E402

django_asgi_app = PooledASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from opsconductor.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)

from django.urls import get_resolver  # noqa: E402

from execution.runners.registry import runners_by_name  # noqa: E402

# Loaded now, not by the first requests after a start: the URLconf (every view and what it
# imports) and the step types (a submission's plan is checked against them).
get_resolver().url_patterns  # noqa: B018 - the property imports the URLconf
runners_by_name()
