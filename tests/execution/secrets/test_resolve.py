"""secrets_resolve_for_step, manage.py secret, and the write-only admin."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from django.core.management import call_command

from execution.masking import active_secrets
from execution.models import SecretEntry
from execution.runners.base import ResolvedTarget
from execution.secrets import SecretError, secrets_resolve_for_step
from execution.secrets.store import secret_set
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def target(credential_ref: str) -> ResolvedTarget:
    return ResolvedTarget(
        asset_id="1", hostname="web-1", connection_type="ssh", credential_ref=credential_ref
    )


def test_resolves_nested_references_and_the_target_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    acme = TenantFactory(slug="acme")
    secret_set(tenant=acme, path="acme/deploy-token", value="tok-123456")
    secret_set(tenant=acme, path="web-1-ssh", value='{"username": "deploy", "password": "ssh-pw-98765"}')
    monkeypatch.setenv("OPS_SECRET_ACME__HDR", "hdr-value-555")
    params = {
        "command": "deploy.sh",
        "env": {"API_TOKEN": {"type": "secret", "path": "db:acme/deploy-token"}},
        "headers": [{"type": "secret", "path": "env:hdr"}],
        "plain": 3,
    }
    resolved = secrets_resolve_for_step(tenant_slug="acme", params=params, target=target("db:web-1-ssh"))
    assert resolved.params["env"]["API_TOKEN"] == "tok-123456"
    assert resolved.params["headers"] == ["hdr-value-555"] and resolved.params["plain"] == 3
    assert resolved.credential == {"username": "deploy", "password": "ssh-pw-98765"}
    assert set(resolved.values) == {"tok-123456", "hdr-value-555", "ssh-pw-98765"}
    assert params["env"]["API_TOKEN"] == {"type": "secret", "path": "db:acme/deploy-token"}  # not mutated
    assert "tok-123456" in active_secrets()
    resolved.drop()  # resolved outside an execution: forgotten with the step
    assert "tok-123456" not in active_secrets()
    assert resolved.params == {} and resolved.credential == {} and resolved.values == ()


def test_credential_field_and_key_detection() -> None:
    acme = TenantFactory(slug="acme")
    secret_set(
        tenant=acme,
        path="k",
        value="-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
    )
    secret_set(tenant=acme, path="p", value="just-a-password")
    assert (
        "private_key"
        in secrets_resolve_for_step(tenant_slug="acme", params={}, target=target("db:k")).credential
    )
    assert secrets_resolve_for_step(tenant_slug="acme", params={}, target=target("db:p")).credential == {
        "password": "just-a-password"
    }


def test_unresolvable_reference_names_the_reference_only() -> None:
    TenantFactory(slug="acme")
    with pytest.raises(SecretError) as info:
        secrets_resolve_for_step(
            tenant_slug="acme", params={"x": {"type": "secret", "path": "db:missing"}}, target=None
        )
    assert "db:missing" in str(info.value)


def test_manage_secret_set_reads_stdin_and_list_shows_paths_only(monkeypatch: pytest.MonkeyPatch) -> None:
    TenantFactory(slug="acme")
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin-value\n"))
    out = io.StringIO()
    call_command("secret", "set", "db:acme/cli-token", "--tenant", "acme", stdout=out)
    assert "from-stdin-value" not in out.getvalue() and "stored db:acme/cli-token" in out.getvalue()
    from execution.secrets import secret_resolve

    assert secret_resolve(tenant_slug="acme", reference="db:acme/cli-token") == "from-stdin-value"
    listing = io.StringIO()
    call_command("secret", "list", "--tenant", "acme", stdout=listing)
    assert listing.getvalue().strip() == "db:acme/cli-token"


def test_admin_value_is_write_only(client: Any) -> None:
    acme = TenantFactory(slug="acme")
    admin_user = UserFactory(username="root-admin", is_staff=True)
    MembershipFactory(tenant=acme, user=admin_user, role="admin")  # the policy's SECRET_SET
    client.force_login(admin_user)
    response = client.post(
        "/admin/execution/secretentry/add/",
        {"tenant": acme.pk, "path": "acme/admin-set", "description": "d", "value": "admin-secret-777"},
    )
    assert response.status_code == 302, response.content[:2000]
    entry = SecretEntry.objects.get(path="acme/admin-set")
    page = client.get(f"/admin/execution/secretentry/{entry.pk}/change/").content.decode()
    assert "admin-secret-777" not in page and entry.ciphertext not in page
    # Saving without a value keeps the old one.
    client.post(
        f"/admin/execution/secretentry/{entry.pk}/change/",
        {"tenant": acme.pk, "path": "acme/admin-set", "description": "changed", "value": ""},
    )
    from execution.secrets import secret_resolve

    assert secret_resolve(tenant_slug="acme", reference="db:acme/admin-set") == "admin-secret-777"


def test_logging_filter_masks_active_secrets_and_patterns() -> None:
    from opsconductor.logging_filters import MaskSecretsFilter

    acme = TenantFactory(slug="acme")
    secret_set(tenant=acme, path="log-me", value="resolved-value-31337")
    resolved = secrets_resolve_for_step(
        tenant_slug="acme", params={"v": {"type": "secret", "path": "db:log-me"}}, target=None
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskSecretsFilter())
    logger = logging.getLogger("tests.masking")
    logger.addHandler(handler)
    try:
        logger.warning("value=%s header=%s", resolved.params["v"], "Authorization: Bearer abc.def.ghi")
        try:
            raise RuntimeError(f"boom {resolved.params['v']}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        resolved.drop()
    text = stream.getvalue()
    assert "resolved-value-31337" not in text and "abc.def.ghi" not in text
    assert "value=*** header=Authorization: Bearer ***" in text and "boom ***" in text


def test_settings_install_the_logging_filter() -> None:
    from django.conf import settings

    assert settings.LOGGING["handlers"]["console"]["filters"] == ["mask_secrets"]
    assert any(
        type(f).__name__ == "MaskSecretsFilter" for h in logging.getLogger().handlers for f in h.filters
    )


def test_backends_check_and_masking_self_test() -> None:
    from execution.secrets.health import masking_self_test, secrets_backends_check

    report = secrets_backends_check()
    assert set(report) == {"env", "file", "db", "vault", "aws"}
    assert not [name for name, item in report.items() if item["state"] == "failing"], report
    assert masking_self_test() == []


def test_short_values_are_refused_by_the_command_and_the_admin(
    monkeypatch: pytest.MonkeyPatch, client: Any
) -> None:
    from django.core.management.base import CommandError

    acme = TenantFactory(slug="acme")
    monkeypatch.setattr("sys.stdin", io.StringIO("short7\n"))
    with pytest.raises(CommandError, match="at least 8 characters"):
        call_command("secret", "set", "db:acme/short", "--tenant", "acme", stdout=io.StringIO())
    admin_user = UserFactory(username="root-admin", is_staff=True)
    MembershipFactory(tenant=acme, user=admin_user, role="admin")  # the policy's SECRET_SET
    client.force_login(admin_user)
    response = client.post(
        "/admin/execution/secretentry/add/",
        {"tenant": acme.pk, "path": "acme/short", "description": "d", "value": "1234567"},
    )
    assert response.status_code == 200 and b"at least 8 characters" in response.content
    assert not SecretEntry.objects.exists()


def test_every_resolution_is_audited_without_the_value() -> None:
    from execution.models import SecretAccess
    from tests.factories import ExecutionFactory

    acme = TenantFactory(slug="acme")
    execution = ExecutionFactory(tenant=acme)
    secret_set(tenant=acme, path="audit-me", value="audited-value-4242")
    secret_set(tenant=acme, path="web-1-ssh", value='{"password": "ssh-pw-98765"}')
    resolved = secrets_resolve_for_step(
        tenant_slug="acme",
        params={"a": {"type": "secret", "path": "db:audit-me"}},
        target=target("db:web-1-ssh"),
        execution=execution,
        step_index=2,
    )
    resolved.drop()
    with pytest.raises(SecretError):
        secrets_resolve_for_step(
            tenant_slug="acme",
            params={"b": {"type": "secret", "path": "db:missing"}},
            target=None,
            execution=execution,
            step_index=3,
        )
    rows = list(
        SecretAccess.objects.order_by("id").values("actor", "execution_id", "step_index", "path", "usage")
    )
    assert rows == [
        {
            "actor": execution.actor_id,
            "execution_id": execution.execution_id,
            "step_index": 2,
            "path": "db:audit-me",
            "usage": "param",
        },
        {
            "actor": execution.actor_id,
            "execution_id": execution.execution_id,
            "step_index": 2,
            "path": "db:web-1-ssh",
            "usage": "credential",
        },
        {
            "actor": execution.actor_id,
            "execution_id": execution.execution_id,
            "step_index": 3,
            "path": "db:missing",
            "usage": "param",
        },
    ]
    assert "audited-value-4242" not in str(list(SecretAccess.objects.values()))


def test_resolution_queries_one_read_per_db_reference_and_one_audit_insert() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import ExecutionFactory

    acme = TenantFactory(slug="acme")
    execution = ExecutionFactory(tenant=acme)
    secret_set(tenant=acme, path="one", value="first-value-111")
    secret_set(tenant=acme, path="two", value="second-value-222")
    params = {"a": {"type": "secret", "path": "db:one"}, "b": [{"type": "secret", "path": "db:two"}]}
    with CaptureQueriesContext(connection) as queries:
        secrets_resolve_for_step(
            tenant_slug="acme", params=params, target=None, execution=execution, step_index=0
        )
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert statements == ["SELECT", "SELECT", "INSERT"], statements
