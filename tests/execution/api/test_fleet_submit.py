"""Fleet steps at submission (docs/fleet.md): ``targets`` as a list or a tag selector, resolved
into the snapshot's sorted concrete list; hash, idempotency and policy cover that list; bad
input is a 400 naming the field and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest

from execution.models import Execution, ExecutionStep
from execution.plans import plan_hash
from tests.execution.api.conftest import client_for
from tests.factories import AccessGrantFactory, AssetFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/executions/"


def fleet_body(targets: Any, *, strategy: dict[str, Any] | None = None, environment: str = "dev") -> dict:
    step: dict[str, Any] = {"name": "restart", "type": "noop", "targets": targets, "params": {}}
    if strategy is not None:
        step["strategy"] = strategy
    return {
        "tenant": "acme",
        "plan": {
            "name": "rolling restart",
            "environment": environment,
            "estimated_duration_seconds": 30,
            "steps": [step],
        },
    }


def _problems(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.content
    return {p["path"]: p["message"] for p in response.json()["errors"]}


def test_a_tag_selector_is_stored_as_the_sorted_concrete_list_with_the_strategy_filled(
    operator: Any, tenant: Any, settings: Any
) -> None:
    web = [AssetFactory(tenant=tenant, hostname=f"web-{i}", tags=["web", "eu"]) for i in range(12)]
    AssetFactory(tenant=tenant, hostname="db-1", tags=["db", "eu"])
    settings.FLEET_CONCURRENCY = 4
    response = client_for(operator).post(
        URL, fleet_body({"tags": ["web", "eu"]}, strategy={"batch": "25%"}), format="json"
    )
    assert response.status_code == 202, response.content
    execution = Execution.objects.get()
    step = execution.plan_snapshot["steps"][0]
    ids = sorted(a.pk for a in web)  # by value: 7 before 10
    assert step["targets"] == [{"asset_id": str(i), "hostname": f"web-{ids.index(i)}"} for i in ids]
    assert step["strategy"] == {"concurrency": 4, "batch": "25%", "max_failures": 0, "pause_seconds": 0}
    assert execution.plan_hash == plan_hash(execution.plan_snapshot)
    row = ExecutionStep.objects.get(execution=execution)
    assert (row.target_asset_id, row.target_hostname) == (str(ids[0]), "web-0")


def test_the_key_and_hash_cover_the_resolved_list_not_the_selector(operator: Any, tenant: Any) -> None:
    for i in range(3):
        AssetFactory(tenant=tenant, hostname=f"web-{i}", tags=["web"])
    client = client_for(operator)
    body = fleet_body({"tags": ["web"]})
    first = client.post(URL, body, format="json")
    assert first.status_code == 202
    assert client.post(URL, body, format="json").status_code == 200  # same inventory: a replay
    AssetFactory(tenant=tenant, hostname="web-3", tags=["web"])
    third = client.post(URL, body, format="json")
    assert third.status_code == 202, "a new web host makes another plan"
    hashes = list(Execution.objects.values_list("plan_hash", flat=True))
    assert len(set(hashes)) == 2
    assert (
        len(
            Execution.objects.get(execution_id=third.json()["execution_id"]).plan_snapshot["steps"][0][
                "targets"
            ]
        )
        == 4
    )


def test_an_empty_selector_is_a_400_naming_the_field_and_stores_nothing(operator: Any, tenant: Any) -> None:
    AssetFactory(tenant=tenant, hostname="db-1", tags=["db"])
    problems = _problems(client_for(operator).post(URL, fleet_body({"tags": ["web"]}), format="json"))
    assert "matched no asset" in problems["plan.steps[0].targets"]
    assert not Execution.objects.exists()


def test_more_targets_than_the_cap_is_a_400(operator: Any, tenant: Any, settings: Any) -> None:
    settings.FLEET_MAX_TARGETS = 3
    for i in range(4):
        AssetFactory(tenant=tenant, hostname=f"web-{i}", tags=["web"])
    problems = _problems(client_for(operator).post(URL, fleet_body({"tags": ["web"]}), format="json"))
    assert problems["plan.steps[0].targets"] == "4 targets; the limit is 3 (OPS_FLEET_MAX_TARGETS)"
    assert not Execution.objects.exists()


def test_a_selector_never_resolves_another_tenants_assets(
    operator: Any, tenant: Any, other_tenant: Any
) -> None:
    theirs = [AssetFactory(tenant=other_tenant, hostname=f"web-{i}", tags=["web"]) for i in range(3)]
    client = client_for(operator)
    problems = _problems(client.post(URL, fleet_body({"tags": ["web"]}), format="json"))
    assert "matched no asset of tenant 'acme'" in problems["plan.steps[0].targets"]
    ours = AssetFactory(tenant=tenant, hostname="web-9", tags=["web"])
    assert client.post(URL, fleet_body({"tags": ["web"]}), format="json").status_code == 202
    targets = Execution.objects.get().plan_snapshot["steps"][0]["targets"]
    assert targets == [{"asset_id": str(ours.pk), "hostname": "web-9"}]
    # Naming their asset by id is an unknown asset here, like any other.
    listed = fleet_body([{"asset_id": ours.pk}, {"asset_id": theirs[0].pk}])
    problems = _problems(client.post(URL, listed, format="json"))
    assert "unknown asset id" in problems["plan.steps[0].targets[1].asset_id"]


def test_a_list_names_each_asset_once_and_a_step_not_both_target_and_targets(
    operator: Any, tenant: Any
) -> None:
    web = AssetFactory(tenant=tenant, hostname="web-1", tags=["web"])
    client = client_for(operator)
    twice = fleet_body([{"asset_id": web.pk}, {"hostname": "web-1"}])
    assert "twice" in _problems(client.post(URL, twice, format="json"))["plan.steps[0].targets"]
    both = fleet_body([{"asset_id": web.pk}])
    both["plan"]["steps"][0]["target"] = {"asset_id": web.pk}
    assert "not both" in _problems(client.post(URL, both, format="json"))["plan.steps[0].targets"]
    assert (
        "non-empty list"
        in _problems(client.post(URL, fleet_body([]), format="json"))["plan.steps[0].targets"]
    )
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("strategy", "field"),
    [
        ({"batch": "0%"}, "batch"),
        ({"batch": 0}, "batch"),
        ({"max_failures": "101%"}, "max_failures"),
        ({"max_failures": -1}, "max_failures"),
        ({"concurrency": 0}, "concurrency"),
        ({"pause_seconds": "soon"}, "pause_seconds"),
        ({"forks": 5}, "forks"),
    ],
)
def test_a_bad_strategy_is_a_400_naming_its_field(
    operator: Any, tenant: Any, strategy: dict[str, Any], field: str
) -> None:
    AssetFactory(tenant=tenant, hostname="web-1", tags=["web"])
    problems = _problems(
        client_for(operator).post(URL, fleet_body({"tags": ["web"]}, strategy=strategy), format="json")
    )
    assert f"plan.steps[0].strategy.{field}" in problems


def test_policy_is_decided_over_every_resolved_target(operator: Any, tenant: Any) -> None:
    """An operator may modify prod only where a grant by tag allows it: the grant must hold for
    each host the selector found, not just one."""
    AccessGrantFactory(
        tenant=tenant, user=operator, environment="prod", action_class="modify", asset_tag="canary"
    )
    AssetFactory(tenant=tenant, hostname="web-1", tags=["web", "canary"])
    plain = AssetFactory(tenant=tenant, hostname="web-2", tags=["web"])
    body = fleet_body({"tags": ["web"]}, environment="prod")
    body["plan"]["steps"][0]["action_class"] = "modify"
    client = client_for(operator)
    assert client.post(URL, body, format="json").status_code == 403
    assert not Execution.objects.exists()
    plain.tags = ["web", "canary"]
    plain.save()
    assert client.post(URL, body, format="json").status_code == 202


def test_a_resolved_snapshot_submits_again_as_it_is(operator: Any, tenant: Any) -> None:
    """Run again resubmits the snapshot: its entries name asset id and hostname."""
    for i in range(2):
        AssetFactory(tenant=tenant, hostname=f"web-{i}", tags=["web"])
    client = client_for(operator)
    assert client.post(URL, fleet_body({"tags": ["web"]}), format="json").status_code == 202
    snapshot = Execution.objects.get().plan_snapshot
    again = client.post(URL, {"tenant": "acme", "plan": snapshot}, format="json")
    assert again.status_code == 200, again.content  # the same concrete plan: a replay
