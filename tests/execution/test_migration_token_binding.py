"""Migration execution.0017 binds the tokens issued before binding (docs/api.md#tokens):
a user of exactly one tenant keeps a working token there; a user of several tenants, or
of none, gets an unbound token that is refused with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from execution.enums import Role
from execution.services.tokens import token_hash
from tests.factories import MembershipFactory, TenantFactory, UserFactory

BEFORE = [("execution", "0016_lock_modes_and_waiters")]
AFTER = [("execution", "0017_bound_named_api_tokens")]


@pytest.fixture
def back_to_latest(transactional_db: Any) -> Iterator[None]:
    try:
        yield
    finally:
        _migrate_to_latest()


def _migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def _old_token(user: Any, key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO api_tokens (user_id, key_hash, prefix, created_at) VALUES (%s, %s, %s, now())",
            [user.pk, token_hash(key), key[:8]],
        )


def test_existing_tokens_are_bound_to_their_users_only_tenant(back_to_latest: None) -> None:
    # Accounts and memberships are made with today's models, before going back (a later
    # migration's column does not exist at 0016); the tokens as 0016 stored them.
    acme, other = TenantFactory(slug="acme"), TenantFactory(slug="other")
    single = UserFactory(username="single")
    MembershipFactory(tenant=acme, user=single, role=Role.VIEWER)
    double = UserFactory(username="double")
    MembershipFactory(tenant=acme, user=double, role=Role.VIEWER)
    MembershipFactory(tenant=other, user=double, role=Role.VIEWER)
    loner = UserFactory(username="loner")
    MigrationExecutor(connection).migrate(BEFORE)
    keys = {"single": "a" * 40, "double": "b" * 40, "loner": "c" * 40}
    for user in (single, double, loner):
        _old_token(user, keys[user.username])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.username, t.slug, a.name, a.token_id IS NOT NULL FROM api_tokens a "
            "JOIN auth_user u ON u.id = a.user_id LEFT JOIN tenants t ON t.id = a.tenant_id ORDER BY u.username"
        )
        rows = cursor.fetchall()
    assert [(r[0], r[1], r[2].startswith("legacy-"), r[3]) for r in rows] == [
        ("double", None, True, True),
        ("loner", None, True, True),
        ("single", "acme", True, True),
    ]
    _migrate_to_latest()  # the service as it runs today reads the bound tokens
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {keys['single']}")
    assert client.get("/api/v1/executions/").status_code == 200  # the client keeps its key
    client.credentials(HTTP_AUTHORIZATION=f"Token {keys['double']}")
    refused = client.get("/api/v1/executions/")
    assert refused.status_code == 401 and "issue a new token" in refused.json()["detail"]
