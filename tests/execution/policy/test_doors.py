"""Door agreement (docs/contract.md#rbac "One policy, every door"): for every right x persona
x work, each door that exposes the right does exactly what the contract's table says
(tests/execution/policy/contract.py, written from the contract, not asked of the policy),
and every refusal of a request the policy saw left an ``rbac_violation`` (an event on the
execution or an audit row). Real database, real views/admin/commands/consumers and the
worker's own before-start function; sockets through channels' WebsocketCommunicator on
the in-memory layer.
"""

from __future__ import annotations

from typing import Any

import pytest

from execution import policy
from execution.policy import Right
from tests.execution.policy.contract import ALLOWED, PERSONAS, allowed, works_of
from tests.execution.policy.doors import (
    AUTHENTICATED_DOORS,
    DOORS,
    deactivate_after_login,
    execution_make,
    records,
    world_build,
)

# A list shows what the right allows in the user's own tenants; it refuses nothing of another.
LIST_DOORS = {(Right.SECRET_LIST, "admin")}


def _cases(rights: list[Right]) -> list[Any]:
    return [pytest.param(right, persona, id=f"{right}-{persona}") for right in rights for persona in PERSONAS]


def _walk(right: Right, persona: str) -> None:
    world = world_build()
    user = world.users[persona]
    if PERSONAS[persona].deactivated:
        deactivate_after_login(user)
    disagreements = []
    for work in works_of(right):
        expected = allowed(right, persona, work)
        for door_name, door in DOORS[right].items():
            before = records()
            did = door(world, user, work)
            if did is not expected:
                disagreements.append(f"{door_name} door, {work}: did={did}, the contract says {expected}")
                continue
            if expected:
                continue
            authenticated_first = PERSONAS[persona].deactivated and door_name in AUTHENTICATED_DOORS
            listing = PERSONAS[persona].tenant != "acme" and (right, door_name) in LIST_DOORS
            if not (authenticated_first or listing) and records() == before:
                disagreements.append(f"{door_name} door, {work}: refused without an rbac_violation")
    assert not disagreements, "\n".join(disagreements)


@pytest.mark.django_db
@pytest.mark.parametrize(("right", "persona"), _cases([r for r in Right if r != Right.SUBSCRIBE]))
def test_every_door_does_what_the_contract_says(right: Right, persona: str, settings: Any) -> None:
    settings.ASSET_SERVICE_URL = None
    _walk(right, persona)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("right", "persona"), _cases([Right.SUBSCRIBE]))
def test_socket_doors_do_what_the_contract_says(right: Right, persona: str) -> None:
    _walk(right, persona)


def test_every_right_of_the_policy_has_a_row_and_doors() -> None:
    """A right added to the policy fails here until the table says who holds it and the
    doors that expose it are driven."""
    assert set(ALLOWED) == set(Right), set(Right) ^ set(ALLOWED)
    assert set(DOORS) == set(Right), set(Right) ^ set(DOORS)
    assert all(DOORS[right] for right in Right)
    assert {"worker"} <= set(DOORS[Right.SUBMIT])


@pytest.mark.django_db
def test_the_policy_decides_what_the_contract_says() -> None:
    """The policy itself against the table (no door): names the cell where they part."""
    world = world_build()
    for name, persona in PERSONAS.items():
        if persona.deactivated:
            deactivate_after_login(world.users[name])
    wrong = []
    for right in Right:
        for name in PERSONAS:
            for work in works_of(right):
                execution = None
                context: dict[str, Any] = {"tenant": world.tenant}
                if right in (Right.CANCEL, Right.VOTE):  # rules that look at the requester
                    execution = execution_make(world, work[0], action_class=work[1])
                    context = {"execution": execution}
                elif right == Right.SUBMIT:
                    context.update(environment=work[0], action_class=work[1])
                said = policy.decide(world.users[name], right, **context).allowed
                if said is not allowed(right, name, work):
                    wrong.append(f"{right} {name} {work}: decide says {said}")
    assert not wrong, "\n".join(wrong)
