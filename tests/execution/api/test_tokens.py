"""``/api/v1/tokens/``: a user's own tokens (list, issue once, revoke) and what a token is
worth at authentication: named, several per user, expiring, last use recorded cheaply."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from execution.enums import Role
from execution.models import ApiToken, AuditLog
from execution.services.tokens import api_token_issue, token_hash
from tests.factories import MembershipFactory, UserFactory, token_for

pytestmark = pytest.mark.django_db


def _rest(key: str, address: str = "127.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_a_member_issues_lists_and_revokes_their_own_tokens(tenant: Any, viewer: Any) -> None:
    client = _session(viewer)
    expires = (timezone.now() + dt.timedelta(days=30)).isoformat()
    made = client.post(
        "/api/v1/tokens/", {"tenant": "acme", "name": "laptop", "expires_at": expires}, format="json"
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["tenant"] == "acme" and body["name"] == "laptop" and body["key"].startswith(body["prefix"])
    stored = ApiToken.objects.get(token_id=body["id"])
    assert stored.key_hash == token_hash(body["key"]) and stored.created_by == viewer
    second = client.post("/api/v1/tokens/", {"tenant": "acme", "name": "ci"}, format="json").json()
    listed = client.get("/api/v1/tokens/").json()
    assert [t["name"] for t in listed] == ["ci", "laptop"] and all("key" not in t for t in listed)
    assert _rest(second["key"]).get("/api/v1/executions/").status_code == 200
    assert client.delete(f"/api/v1/tokens/{second['id']}/").status_code == 204
    assert _rest(second["key"]).get("/api/v1/executions/").status_code == 401
    kinds = list(AuditLog.objects.order_by("id").values_list("event_type", "details__token"))
    assert kinds == [("token_issued", "laptop"), ("token_issued", "ci"), ("token_revoked", "ci")]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"tenant": "acme"}, "name"),
        ({"tenant": "acme", "name": ""}, "name"),
        ({"tenant": "acme", "name": "x" * 101}, "name"),
        ({"tenant": "acme", "name": "two\nlines"}, "name"),
        ({"tenant": "acme", "name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"tenant": "acme", "name": "x", "expires_at": "tomorrow"}, "expires_at"),
        ({"tenant": "acme", "name": "x", "scope": "all"}, "scope"),
        (["not", "an", "object"], "body"),
    ],
)
def test_a_bad_token_request_is_a_400_naming_the_field(
    tenant: Any, viewer: Any, body: Any, path: str
) -> None:
    answer = _session(viewer).post("/api/v1/tokens/", body, format="json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["errors"][0]["path"] == path
    assert not ApiToken.objects.exists()


def test_the_name_is_unique_per_user_and_tenant(tenant: Any, viewer: Any) -> None:
    client = _session(viewer)
    assert client.post("/api/v1/tokens/", {"tenant": "acme", "name": "ci"}, format="json").status_code == 201
    again = client.post("/api/v1/tokens/", {"tenant": "acme", "name": "ci"}, format="json")
    assert again.status_code == 400 and "already" in again.json()["detail"]


def test_another_tenant_is_unknown_and_a_token_acts_in_its_own_only(
    tenant: Any, other_tenant: Any, viewer: Any
) -> None:
    client = _session(viewer)
    assert client.post("/api/v1/tokens/", {"tenant": "other", "name": "x"}, format="json").status_code == 404
    assert (
        client.post("/api/v1/tokens/", {"tenant": "nowhere", "name": "x"}, format="json").status_code == 404
    )
    MembershipFactory(tenant=other_tenant, user=viewer, role=Role.VIEWER)
    bound = _rest(token_for(viewer, tenant, name="acme-only"))
    assert bound.post("/api/v1/tokens/", {"tenant": "other", "name": "x"}, format="json").status_code == 404
    token_for(viewer, other_tenant, name="other-one")
    # The acme token lists (and may revoke) acme's tokens only.
    assert [t["name"] for t in bound.get("/api/v1/tokens/").json()] == ["acme-only"]
    foreign = ApiToken.objects.get(name="other-one")
    assert bound.delete(f"/api/v1/tokens/{foreign.token_id}/").status_code == 404
    assert ApiToken.objects.filter(pk=foreign.pk).exists()


def test_someone_elses_token_is_unknown(tenant: Any, viewer: Any, operator: Any) -> None:
    token_for(operator, tenant, name="olgas")
    token = ApiToken.objects.get(name="olgas")
    assert _session(viewer).delete(f"/api/v1/tokens/{token.token_id}/").status_code == 404
    assert _session(viewer).delete("/api/v1/tokens/not-a-uuid/").status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_a_token_cannot_issue_one_that_outlives_it(tenant: Any, viewer: Any) -> None:
    soon = timezone.now() + dt.timedelta(days=1)
    key = api_token_issue(user=viewer, tenant=tenant, name="short", expires_at=soon).key
    client = _rest(key)
    later = (timezone.now() + dt.timedelta(days=10)).isoformat()
    refused = client.post(
        "/api/v1/tokens/", {"tenant": "acme", "name": "long", "expires_at": later}, format="json"
    )
    assert refused.status_code == 400 and refused.json()["errors"][0]["path"] == "expires_at"
    made = client.post("/api/v1/tokens/", {"tenant": "acme", "name": "child"}, format="json")
    assert made.status_code == 201
    assert ApiToken.objects.get(name="child").expires_at == ApiToken.objects.get(name="short").expires_at


def test_an_expired_token_is_refused_with_the_reason(tenant: Any, viewer: Any) -> None:
    issued = api_token_issue(
        user=viewer, tenant=tenant, name="old", expires_at=timezone.now() + dt.timedelta(seconds=30)
    )
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    answer = _rest(issued.key).get("/api/v1/executions/")
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


def test_an_unbound_token_of_before_binding_is_refused_with_the_reason(tenant: Any, viewer: Any) -> None:
    issued = api_token_issue(user=viewer, tenant=tenant, name="legacy")
    ApiToken.objects.filter(pk=issued.token.pk).update(tenant=None)
    answer = _rest(issued.key).get("/api/v1/executions/")
    assert answer.status_code == 401 and "issue a new token" in answer.json()["detail"]


def test_last_use_is_written_at_most_once_a_minute_in_the_lookup_itself(tenant: Any, viewer: Any) -> None:
    key = token_for(viewer, tenant, name="watched")
    token = ApiToken.objects.get(name="watched")
    assert token.last_used_at is None
    with CaptureQueriesContext(connection) as first:
        assert _rest(key, "192.0.2.7").get("/api/v1/tokens/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_from == "192.0.2.7" and token.last_used_at is not None
    stamped = token.last_used_at
    with CaptureQueriesContext(connection) as second:
        assert _rest(key, "192.0.2.8").get("/api/v1/tokens/").status_code == 200
    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_from) == (stamped, "192.0.2.7")  # within the minute
    # The lookup is one statement either way: the write rides along, no extra round trip.
    assert len(first) == len(second)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stamped - dt.timedelta(seconds=61))
    _rest(key, "192.0.2.8").get("/api/v1/tokens/")
    token.refresh_from_db()
    assert token.last_used_from == "192.0.2.8" and token.last_used_at > stamped


def test_several_named_tokens_per_user_each_work_and_show_their_own_last_use(tenant: Any) -> None:
    user = UserFactory(username="pipeline")
    MembershipFactory(tenant=tenant, user=user, role=Role.OPERATOR)
    keys = [token_for(user, tenant, name=name) for name in ("ci", "cd", "cron")]
    _rest(keys[1]).get("/api/v1/executions/")
    used = dict(ApiToken.objects.values_list("name", "last_used_at"))
    assert used["cd"] is not None and used["ci"] is None and used["cron"] is None
    assert all(_rest(k).get("/api/v1/executions/").status_code == 200 for k in keys)


def test_the_tokens_endpoints_are_in_the_openapi_schema(viewer: Any) -> None:
    schema = _session(viewer).get("/api/v1/schema/?format=json").json()
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/tokens/"])
    assert "delete" in schema["paths"]["/api/v1/tokens/{token_id}/"]
