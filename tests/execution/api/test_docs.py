"""The API documentation pages are served from our own static files (no CDN)."""

from __future__ import annotations

import re

import pytest
from django.test import Client


@pytest.mark.django_db
def test_swagger_ui_loads_its_assets_from_our_static_files_not_a_cdn() -> None:
    client = Client()
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any("swagger-ui" in a for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


@pytest.mark.django_db
def test_openapi_schema_is_served_and_names_the_execution_endpoints() -> None:
    answer = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    for expected in (
        "/api/v1/executions/",
        "/api/v1/executions/{execution_id}/",
        "/api/v1/executions/{execution_id}/events/",
        "/api/v1/executions/{execution_id}/cancel/",
        "/api/v1/dlq/",
        "/api/v1/dlq/{dlq_id}/requeue/",
    ):
        assert expected in paths, expected


@pytest.mark.django_db
def test_redoc_is_served_from_our_static_files() -> None:
    client = Client()
    page = client.get("/api/redoc/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any("redoc" in a for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
