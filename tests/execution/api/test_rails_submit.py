"""Safety rails at submission (docs/security.md): targets, declared classes, dry-run keys."""

from __future__ import annotations

from typing import Any

import pytest

from execution.models import AuditLog, Execution
from tests.execution.api.conftest import client_for, noop_body
from tests.factories import LocalAssetFactory, ReadOnlyCommandRuleFactory, TenantFactory

URL = "/api/v1/executions/"
pytestmark = pytest.mark.django_db


def _body(
    environment: str, step: dict[str, Any], *, tenant: str = "acme", estimate: float = 30
) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "plan": {
            "name": "rails",
            "environment": environment,
            "estimated_duration_seconds": estimate,
            "steps": [step],
        },
    }


@pytest.mark.parametrize(
    "step",
    [
        {"name": "id", "type": "command", "params": {"command": "id"}},
        {"name": "id", "type": "bash", "params": {"command": "id"}, "target": None},
        {
            "name": "put",
            "type": "file",
            "params": {"direction": "upload", "remote_path": "/x", "content": "x"},
        },
        {"name": "q", "type": "sql", "params": {"query": "SELECT 1"}},
    ],
)
def test_a_step_that_needs_a_target_without_one_is_a_400_naming_it(
    operator: Any, step: dict[str, Any]
) -> None:
    response = client_for(operator).post(URL, _body("dev", step), format="json")
    assert response.status_code == 400, response.content
    assert "plan.steps[0].target" in [e["path"] for e in response.json()["errors"]]
    assert not Execution.objects.exists()


def test_the_outsiders_shell_on_the_worker_host_is_refused(outsider: Any) -> None:
    # The finding: a member of a tenant without assets ran `id` (uid 0) and read a file secret.
    step = {"name": "id", "type": "command", "params": {"command": "id; cat .state/secrets/demo/x"}}
    response = client_for(outsider).post(URL, _body("dev", step, tenant="other", estimate=1), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["path"] == "plan.steps[0].target"
    assert not Execution.objects.exists()


def _prod_command(tenant: Any, command: str) -> dict[str, Any]:
    asset = LocalAssetFactory(tenant=tenant)
    step = {
        "name": "declared read",
        "type": "command",
        "target": {"asset_id": asset.pk},
        "params": {"command": command},
        "action_class": "read",
    }
    return _body("prod", step, estimate=1)


def test_a_prod_command_declared_read_without_a_matching_rule_gets_the_approval_of_a_modify(
    tenant: Any, deployer: Any
) -> None:
    # The finding: this ran at once at level 0. Another tenant's rule does not count.
    ReadOnlyCommandRuleFactory(tenant=TenantFactory(slug="elsewhere"), pattern="systemctl restart nginx")
    ReadOnlyCommandRuleFactory(tenant=tenant, pattern="systemctl status nginx")
    response = client_for(deployer).post(URL, _prod_command(tenant, "systemctl restart nginx"), format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert (data["action_class"], data["approval_level"], data["status"]) == ("modify", 1, "pending_approval")
    assert data["execution_mode"] == "background"


def test_a_prod_command_declared_read_matching_a_read_only_rule_is_read(tenant: Any, deployer: Any) -> None:
    ReadOnlyCommandRuleFactory(tenant=tenant, pattern=r"nginx -t")
    body = _prod_command(tenant, "nginx -t")
    body["plan"]["estimated_duration_seconds"] = 30  # background: this test has no worker
    response = client_for(deployer).post(URL, body, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert (data["action_class"], data["approval_level"], data["status"]) == ("read", 0, "queued")
    # The rule matches the whole command: a longer command is not covered by it.
    longer = _prod_command(tenant, "nginx -t; rm -rf /srv")
    assert client_for(deployer).post(URL, longer, format="json").json()["approval_level"] == 1


@pytest.mark.parametrize(
    ("command", "env"),
    [
        ("df -h /;id", None),
        ("df -h $(id)", None),
        ("df -h `id`", None),
        ("df -h /|sh", None),
        ("df -h />/tmp/x", None),
        ("df -h /\\", None),
        ("df -h /", {"LD_PRELOAD": "/tmp/x.so"}),
        ("df -h /", {"PATH": "/tmp/planted"}),
    ],
)
def test_a_read_only_rule_does_not_vouch_for_shell_syntax_or_a_step_env(
    tenant: Any, deployer: Any, command: str, env: dict[str, str] | None
) -> None:
    # The finding: the demo rule `df -h( \S+)?` let `df -h /;id` (and an LD_PRELOAD or PATH
    # env) run in prod at approval level 0 as a read.
    ReadOnlyCommandRuleFactory(tenant=tenant, pattern=r"df -h( \S+)?")
    body = _prod_command(tenant, command)
    body["plan"]["estimated_duration_seconds"] = 30  # background: this test has no worker
    if env is not None:
        body["plan"]["steps"][0]["params"]["env"] = env
    response = client_for(deployer).post(URL, body, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert (data["action_class"], data["approval_level"], data["status"]) == ("modify", 1, "pending_approval")
    plain = _prod_command(tenant, "df -h /")
    plain["plan"]["estimated_duration_seconds"] = 30
    assert client_for(deployer).post(URL, plain, format="json").json()["approval_level"] == 0


@pytest.mark.parametrize(
    "step",
    [
        {
            "name": "post",
            "type": "http",
            "params": {"method": "POST", "url": "http://x/"},
            "action_class": "read",
        },
        {"name": "deploy", "type": "noop", "params": {}, "action_class": "deploy"},
    ],
)
def test_a_declared_class_may_raise_but_never_lower_the_type_default(
    operator: Any, step: dict[str, Any]
) -> None:
    response = client_for(operator).post(URL, _body("dev", step), format="json")
    if step["action_class"] == "deploy":  # raising is fine (and needs a deployer in prod)
        assert response.status_code == 403, response.content
        return
    assert response.status_code == 400, response.content
    assert [e["path"] for e in response.json()["errors"]] == ["plan.steps[0].action_class"]
    assert not Execution.objects.exists() and not AuditLog.objects.exists()


@pytest.mark.parametrize("header", [None, "change-4711"])
def test_a_dry_run_never_stands_in_for_the_real_run(operator: Any, header: str | None) -> None:
    client = client_for(operator)
    extra = {"HTTP_IDEMPOTENCY_KEY": header} if header else {}
    dry = client.post(URL, {**noop_body(), "dry_run": True}, format="json", **extra)
    real = client.post(URL, noop_body(), format="json", **extra)
    assert (dry.status_code, real.status_code) == (202, 202), real.content
    assert dry.json()["execution_id"] != real.json()["execution_id"]
    assert Execution.objects.count() == 2
    again = client.post(URL, noop_body(), format="json", **extra)
    assert again.status_code == 200 and again.json()["execution_id"] == real.json()["execution_id"]
    dry_again = client.post(URL, {**noop_body(), "dry_run": True}, format="json", **extra)
    assert dry_again.status_code == 200 and dry_again.json()["execution_id"] == dry.json()["execution_id"]


SIDE_EFFECTS = [
    "SELECT pg_terminate_backend(12345)",
    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity",
    "SELECT dblink_exec('dbname=prod', 'DROP TABLE accounts')",
    "SELECT * FROM dblink('dbname=prod', 'SELECT 1') AS t(x int)",
    "SELECT set_config('search_path', 'evil', false)",
    "SELECT pg_advisory_lock(1)",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(16384, '/tmp/x')",
    "SELECT pg_reload_conf()",
    "SELECT pg_rotate_logfile()",
    "SELECT nextval('orders_id_seq')",
    "SELECT setval('orders_id_seq', 1)",
    "SELECT pg_catalog.pg_terminate_backend(12345)",
    'SELECT "pg_terminate_backend"(12345)',
    "WITH gone AS (DELETE FROM t RETURNING *) SELECT count(*) FROM gone",
    "SELECT * INTO copy_of_t FROM t",
]


def _prod_sql(tenant: Any, query: str, **step: Any) -> dict[str, Any]:
    from tests.factories import AssetFactory

    asset = AssetFactory(tenant=tenant, connection_type="database")
    sql = {"name": "q", "type": "sql", "target": {"asset_id": asset.pk}, "params": {"query": query}, **step}
    return _body("prod", sql)


@pytest.mark.parametrize("query", SIDE_EFFECTS)
def test_a_select_calling_a_function_not_known_read_only_gets_the_approval_of_a_modify(
    tenant: Any, deployer: Any, query: str
) -> None:
    # The finding: any SELECT was a read, so these ran in prod at level 0 (READ ONLY does not
    # stop them) (docs/security.md "SQL read steps").
    response = client_for(deployer).post(URL, _prod_sql(tenant, query), format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert (data["action_class"], data["approval_level"], data["status"]) == ("modify", 1, "pending_approval")
    assert data["steps"][0]["action_class"] == "modify"
    declared = client_for(deployer).post(URL, _prod_sql(tenant, query, action_class="read"), format="json")
    assert declared.status_code == 400, declared.content
    assert [e["path"] for e in declared.json()["errors"]] == ["plan.steps[0].action_class"]


def test_a_select_of_read_only_functions_is_still_a_read(tenant: Any, deployer: Any) -> None:
    query = (
        "SELECT state, count(*), pg_size_pretty(pg_database_size(current_database())), "
        "max(now() - backend_start) FROM pg_stat_activity WHERE datname = %s GROUP BY state"
    )
    body = _prod_sql(tenant, query)
    body["plan"]["steps"][0]["params"]["params"] = ["acme"]
    response = client_for(deployer).post(URL, body, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert (data["action_class"], data["approval_level"], data["status"]) == ("read", 0, "queued")
    # A parameter pasted inside a literal would be SQL, not a value: never a read.
    inside = _prod_sql(tenant, "SELECT count(*) FROM t WHERE name = '%s'")
    inside["plan"]["steps"][0]["params"]["params"] = ["' || pg_terminate_backend(1) || '"]
    assert client_for(deployer).post(URL, inside, format="json").json()["approval_level"] == 1
