"""The five backends of docs/contract.md#secrets-and-masking, each against the real thing where it can run here."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from execution.models import SecretEntry
from execution.secrets import SecretError, secret_resolve
from execution.secrets.backends import env_variable_name
from execution.secrets.store import secret_set
from tests.factories import TenantFactory
from tests.support.httpserver import LoopbackHttpServer, json_answer
from tests.support.processes import free_port, wait_for_port

pytestmark = pytest.mark.django_db


def test_env_backend_is_tenant_scoped(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_variable_name(tenant_slug="acme", path="deploy-token") == "OPS_SECRET_ACME__DEPLOY_2D_TOKEN"
    monkeypatch.setenv("OPS_SECRET_ACME__DEPLOY_2D_TOKEN", "env-value-1")
    assert secret_resolve(tenant_slug="acme", reference="env:deploy-token") == "env-value-1"
    with pytest.raises(SecretError, match="OPS_SECRET_OTHER__DEPLOY_2D_TOKEN is not set"):
        secret_resolve(tenant_slug="other", reference="env:deploy-token")


def test_file_backend_with_field_and_no_escape(tmp_path: Path, settings: Any) -> None:
    settings.SECRETS_FILE_DIR = str(tmp_path)
    (tmp_path / "acme" / "db").mkdir(parents=True)
    (tmp_path / "acme" / "db" / "creds.json").write_text(
        json.dumps({"user": "app", "password": "f-pw"}) + "\n"
    )
    (tmp_path / "acme" / "plain").write_text("plain-value\n")
    assert secret_resolve(tenant_slug="acme", reference="file:plain") == "plain-value"
    assert secret_resolve(tenant_slug="acme", reference="file:db/creds.json#password") == "f-pw"
    with pytest.raises(SecretError, match="leaves the tenant's secrets directory"):
        secret_resolve(tenant_slug="acme", reference="file:../other/plain")
    with pytest.raises(SecretError, match="no field 'nope'"):
        secret_resolve(tenant_slug="acme", reference="file:db/creds.json#nope")


def test_db_backend_encrypts_at_rest_and_isolates_tenants() -> None:
    acme, other = TenantFactory(slug="acme"), TenantFactory(slug="other")
    secret_set(tenant=acme, path="acme/deploy-token", value="db-plaintext-value")
    row = SecretEntry.objects.get(tenant=acme)
    assert "db-plaintext-value" not in row.ciphertext and row.ciphertext.startswith("gAAAA")
    assert secret_resolve(tenant_slug="acme", reference="db:acme/deploy-token") == "db-plaintext-value"
    with pytest.raises(SecretError, match="no such secret in tenant 'other'"):
        secret_resolve(tenant_slug=other.slug, reference="db:acme/deploy-token")


def test_db_backend_key_from_settings_and_rotation(settings: Any) -> None:
    from cryptography.fernet import Fernet

    acme = TenantFactory(slug="acme")
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SECRETS_ENCRYPTION_KEY = old
    secret_set(tenant=acme, path="k", value="rotate-me")
    settings.SECRETS_ENCRYPTION_KEY = f"{new},{old}"  # new key first: still decrypts the old token
    assert secret_resolve(tenant_slug="acme", reference="db:k") == "rotate-me"
    settings.SECRETS_ENCRYPTION_KEY = new
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        secret_resolve(tenant_slug="acme", reference="db:k")


def test_production_requires_an_encryption_key(settings: Any) -> None:
    from execution.secrets.crypto import check_encryption_key

    settings.DEV_MODE = False
    settings.SECRETS_ENCRYPTION_KEY = None
    assert [e.id for e in check_encryption_key(None)] == ["execution.E601"]
    settings.SECRETS_ENCRYPTION_KEY = "not-a-key"
    assert [e.id for e in check_encryption_key(None)] == ["execution.E602"]


def test_malformed_references() -> None:
    with pytest.raises(SecretError, match="backend must be one of"):
        secret_resolve(tenant_slug="acme", reference="s3:bucket/x")
    with pytest.raises(SecretError, match="empty path"):
        secret_resolve(tenant_slug="acme", reference="db:")


# --- Vault ------------------------------------------------------------------------------
# No Vault binary is available on this machine, so hvac talks to a loopback HTTP server that
# speaks the KV v2 read endpoint (GET /v1/<mount>/data/<path>) the way Vault answers it.


def vault_responder(store: dict[str, dict[str, str]], token: str) -> Any:
    def respond(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if headers.get("X-Vault-Token") != token:
            return json_answer(403, {"errors": ["permission denied"]})
        prefix = "/v1/secret/data/"
        key = path.split("?")[0].removeprefix(prefix)
        if method != "GET" or not path.startswith(prefix) or key not in store:
            return json_answer(404, {"errors": []})
        return json_answer(
            200,
            {
                "request_id": "r1",
                "lease_id": "",
                "renewable": False,
                "lease_duration": 0,
                "data": {
                    "data": store[key],
                    "metadata": {
                        "created_time": "2026-11-28T00:00:00Z",
                        "deletion_time": "",
                        "destroyed": False,
                        "version": 1,
                    },
                },
            },
        )

    return respond


def test_vault_kv2_backend(settings: Any) -> None:
    store = {"acme/app/db": {"username": "app", "password": "vault-pw"}, "acme/single": {"value": "only"}}
    with LoopbackHttpServer(vault_responder(store, "s.test-token")) as server:
        settings.VAULT_ADDR = server.url
        settings.VAULT_TOKEN = "s.test-token"
        assert secret_resolve(tenant_slug="acme", reference="vault:app/db#password") == "vault-pw"
        assert secret_resolve(tenant_slug="acme", reference="vault:single") == "only"
        with pytest.raises(SecretError, match="several fields"):
            secret_resolve(tenant_slug="acme", reference="vault:app/db")
        with pytest.raises(SecretError, match="not found in Vault"):
            secret_resolve(tenant_slug="other", reference="vault:app/db#password")
        settings.VAULT_TOKEN = "wrong"
        with pytest.raises(SecretError, match="Vault error"):
            secret_resolve(tenant_slug="acme", reference="vault:app/db#password")
    assert server.requests[0]["path"].startswith("/v1/secret/data/acme/app/db")


# --- AWS Secrets Manager (moto in server mode on loopback) ------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_for_port(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, settings: Any, moto_endpoint: str) -> str:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # moto keeps its backends in process memory, shared by every server of this process:
    # start each test from an empty account.
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    settings.AWS_SECRETS_ENDPOINT_URL = moto_endpoint
    settings.AWS_SECRETS_REGION = "us-east-1"
    return moto_endpoint


def test_aws_secrets_manager_backend(aws_env: str) -> None:
    import boto3

    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=aws_env)
    client.create_secret(Name="opsconductor/acme/api", SecretString=json.dumps({"token": "aws-token-1"}))
    client.create_secret(Name="opsconductor/acme/plain", SecretString="aws-plain")
    assert secret_resolve(tenant_slug="acme", reference="aws:api#token") == "aws-token-1"
    assert secret_resolve(tenant_slug="acme", reference="aws:plain") == "aws-plain"
    with pytest.raises(SecretError, match="ResourceNotFoundException"):
        secret_resolve(tenant_slug="other", reference="aws:plain")
    assert "aws-plain" not in os.environ.values()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("acme+prod", "_db"), ("acme", "prod+db")),
        (("acme", "prod__db"), ("acme__prod", "db")),
        (("acme", "prod/db"), ("acme", "prod_db")),
        (("acme", "prod/db"), ("acme/prod", "db")),
        (("acme", "a-b"), ("acme", "a_b")),
        (("acme", "a.b"), ("acme", "a-b")),
    ],
)
def test_env_names_never_collide(first: tuple[str, str], second: tuple[str, str]) -> None:
    names = {env_variable_name(tenant_slug=t, path=p) for t, p in (first, second)}
    assert len(names) == 2, names
    assert all(re.fullmatch(r"[A-Z0-9_]+", name) for name in names)
