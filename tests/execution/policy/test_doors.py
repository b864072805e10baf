"""Door agreement (docs/contract.md#rbac "One policy, every door"): for every right x role x environment, each
door that exposes the right does exactly what ``policy.decide`` says, and every refusal of
a request the policy saw left an ``rbac_violation`` (an event on the execution or an audit
row). Real database, real views/admin/commands/consumers; sockets through channels'
WebsocketCommunicator on the in-memory layer.
"""

from __future__ import annotations

from typing import Any

import pytest

from execution import policy
from execution.policy import Right
from tests.execution.policy.doors import (
    AUTHENTICATED_DOORS,
    DOORS,
    PERSONAS,
    WORK,
    World,
    deactivate_after_login,
    records,
    world_build,
)

# The environment matters to submit and cancel; the other rights are tried in prod only.
BY_ENVIRONMENT = {Right.SUBMIT, Right.CANCEL}
# A list shows what the right allows in the user's own tenants; it refuses nothing of another.
LIST_DOORS = {(Right.SECRET_LIST, "admin")}


def _cases(rights: list[Right]) -> list[Any]:
    return [
        pytest.param(right, persona, env, id=f"{right}-{persona}-{env}")
        for right in rights
        for persona in PERSONAS
        for env in (list(WORK) if right in BY_ENVIRONMENT else ["prod"])
    ]


def _expected(world: World, persona: str, right: Right, env: str) -> bool:
    """What the policy says, asked for the work the doors are given (decide never writes)."""
    user = world.users[persona]
    context: dict[str, Any] = {"tenant": world.tenant}
    if right in BY_ENVIRONMENT:
        context.update(environment=env, action_class=WORK[env])
    return policy.decide(user, right, **context).allowed


def _walk(right: Right, persona: str, env: str) -> None:
    world = world_build()
    user = world.users[persona]
    if persona == "deactivated":
        deactivate_after_login(user)
    expected = _expected(world, persona, right, env)
    for door_name, door in DOORS[right].items():
        before = records()
        did = door(world, user, env)
        assert did is expected, f"{door_name} door: did={did}, policy allows={expected}"
        if expected:
            continue
        authenticated_first = persona == "deactivated" and door_name in AUTHENTICATED_DOORS
        listing = persona == "outsider" and (right, door_name) in LIST_DOORS
        if not (authenticated_first or listing):
            assert records() > before, f"{door_name} door refused without an rbac_violation"


@pytest.mark.django_db
@pytest.mark.parametrize(("right", "persona", "env"), _cases([r for r in Right if r != Right.SUBSCRIBE]))
def test_every_door_agrees_with_the_policy(right: Right, persona: str, env: str, settings: Any) -> None:
    settings.ASSET_SERVICE_URL = None
    _walk(right, persona, env)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("right", "persona", "env"), _cases([Right.SUBSCRIBE]))
def test_socket_doors_agree_with_the_policy(right: Right, persona: str, env: str) -> None:
    _walk(right, persona, env)


@pytest.mark.django_db
def test_the_policy_table_is_what_the_contract_says() -> None:
    """The expectations above come from decide; pin the table itself so both cannot drift."""
    world = world_build()
    deactivate_after_login(world.users["deactivated"])
    allowed = {
        (right, persona, env)
        for right in Right
        for persona in PERSONAS
        for env in WORK
        if _expected(world, persona, right, env)
    }
    members = {"viewer", "operator", "deployer", "approver", "admin"}
    for env in WORK:
        assert {p for p in PERSONAS if (Right.READ, p, env) in allowed} == members
        assert {p for p in PERSONAS if (Right.SUBSCRIBE, p, env) in allowed} == members
        assert {p for p in PERSONAS if (Right.VOTE, p, env) in allowed} == {"approver", "admin"}
        for right in (
            Right.REQUEUE,
            Right.ARCHIVE,
            Right.SECRET_SET,
            Right.SECRET_LIST,
            Right.MANAGE_MEMBERS,
        ):
            assert {p for p in PERSONAS if (right, p, env) in allowed} == {"admin"}
    operator_env = {"dev"}  # dev is read work, staging and prod deploy work (see WORK)
    for right in (Right.SUBMIT, Right.CANCEL):
        for env in WORK:
            expected = {"deployer", "admin"} | ({"operator"} if env in operator_env else set())
            assert {p for p in PERSONAS if (right, p, env) in allowed} == expected, (right, env)
