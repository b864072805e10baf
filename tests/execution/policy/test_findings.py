"""Regressions of the doors that disagreed: each failed before one policy decided for all."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command

from approvals.models import Approval
from execution.enums import ExecutionStatus
from execution.models import DeadLetter, Execution, ExecutionEvent, Membership
from execution.services.submit import execution_submit
from tests.execution.policy.doors import (
    approval_make,
    browser,
    dead_letter_make,
    execution_make,
    rest,
    world_build,
)
from tests.execution.realtime.live import run_async
from tests.factories import AccessGrantFactory, token_for
from tests.support.httpserver import LoopbackHttpServer, json_answer


@pytest.mark.django_db
def test_an_operator_cannot_cancel_a_prod_deploy_from_the_page() -> None:
    world = world_build()
    execution = execution_make(world, "prod")
    client = browser(world.users["operator"])
    assert "cancel-button" not in client.get(f"/executions/{execution.execution_id}/").content.decode()
    response = client.post(f"/executions/{execution.execution_id}/cancel/")
    assert response.status_code == 403
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.QUEUED
    event = ExecutionEvent.objects.get(execution_id=execution.execution_id, event_type="rbac_violation")
    assert event.details["action"] == "cancel" and "operator" in event.details["reason"]


@pytest.mark.django_db
def test_dlq_requeue_command_refuses_an_operator_with_a_one_line_reason() -> None:
    world = world_build()
    entry = dead_letter_make(world, "dev")
    with pytest.raises(CommandError) as refused:
        call_command("dlq", "requeue", str(entry.dlq_id), "--user", "operator-user")
    # manage.py prints a CommandError as one "CommandError: ..." line and exits with its code.
    assert refused.value.returncode != 0
    message = str(refused.value)
    assert "\n" not in message and "permission denied" in message and "only an admin" in message
    assert not DeadLetter.objects.get(pk=entry.pk).requeued
    assert ExecutionEvent.objects.filter(
        execution_id=entry.execution_id, event_type="rbac_violation"
    ).exists()


def _command_refusal(*args: str) -> str:
    with pytest.raises(CommandError) as refused:
        call_command(*args)
    assert refused.value.returncode != 0
    return str(refused.value)


@pytest.mark.django_db
def test_commands_answer_an_outsider_not_found_like_rest() -> None:
    """``approve --user outsider`` said "missing role in tenant 'acme'": it told an outsider
    that the execution exists and whose it is. REST answers 404; the commands now say the
    same words as for an id that does not exist (and record the refusal)."""
    world = world_build()
    approval = approval_make(world, "prod")
    entry = dead_letter_make(world, "prod")
    queued = execution_make(world, "prod")
    unknown = "00000000-0000-0000-0000-000000000000"
    cases = [
        (("approve", str(approval.execution.execution_id)), "execution", approval.execution.execution_id),
        (("reject", str(approval.execution.execution_id)), "execution", approval.execution.execution_id),
        (("cancel", str(queued.execution_id)), "execution", queued.execution_id),
        (("dlq", "requeue", str(entry.dlq_id)), "dead letter", entry.execution_id),
        (("dlq", "archive", str(entry.execution_id)), "dead letter", entry.execution_id),
    ]
    vote = f"/api/v1/executions/{approval.execution.execution_id}/approve/"
    assert rest(world.users["outsider"]).post(vote, {}, format="json").status_code == 404
    for args, what, execution_id in cases:
        before = ExecutionEvent.objects.filter(execution_id=execution_id, event_type="rbac_violation").count()
        message = _command_refusal(*args, "--user", "outsider-user")
        assert message == f"not found: no such {what} {args[-1]}", message
        assert "acme" not in message
        # An id that does not exist gets the very same words.
        assert _command_refusal(*args[:-1], unknown, "--user", "outsider-user") == (
            f"not found: no such {what} {unknown}"
        )
        after = ExecutionEvent.objects.filter(execution_id=execution_id, event_type="rbac_violation").count()
        assert after == before + 1, f"{args[0]}: the refusal was not recorded"
    assert Approval.objects.get(pk=approval.pk).state == "pending"
    assert not DeadLetter.objects.get(pk=entry.pk).requeued
    assert Execution.objects.get(pk=queued.pk).status == ExecutionStatus.QUEUED
    # A member without the right still learns why (REST's 403).
    assert "permission denied" in _command_refusal(
        "cancel", str(queued.execution_id), "--user", "viewer-user"
    )


@pytest.mark.django_db
def test_the_admin_filters_name_no_tenant_of_which_the_user_is_no_member() -> None:
    """The admin's "By tenant" filters listed every tenant (slug and id) to a staff admin of
    another one; REST, pages and sockets answer another tenant as unknown."""
    from django.contrib import admin

    world = world_build()
    approval_make(world, "prod")
    dead_letter_make(world, "prod")
    client = browser(world.users["outsider"])
    walked = []
    for model in admin.site._registry:
        if model._meta.app_label not in ("execution", "approvals", "monitoring"):
            continue
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        response = client.get(url + ("?state=all" if model._meta.model_name == "approval" else ""))
        if response.status_code != 200:
            continue
        walked.append(url)
        assert "acme" not in response.content.decode(), url
    assert {"/admin/approvals/approval/", "/admin/execution/execution/"} <= set(walked)
    assert "acme" in browser(world.users["admin"]).get("/admin/approvals/approval/").content.decode()


@pytest.mark.django_db
def test_dlq_list_command_with_a_user_lists_only_what_that_user_may_see() -> None:
    """The shell's list agreed with no other door: an outsider saw every tenant's dead letters."""
    import io

    world = world_build()
    entry = dead_letter_make(world, "dev")
    seen = {}
    for who in ("outsider-user", "admin-user"):
        out = io.StringIO()
        call_command("dlq", "list", "--user", who, stdout=out)
        seen[who] = out.getvalue()
    assert str(entry.dlq_id) not in seen["outsider-user"]
    assert str(entry.dlq_id) in seen["admin-user"]


async def _close_code_after(path: str, token: str, revoke: Any) -> int | None:
    from channels.testing import WebsocketCommunicator

    from opsconductor.asgi import application

    communicator = WebsocketCommunicator(application, f"{path}?token={token}")
    connected, _ = await communicator.connect(timeout=10)
    assert connected and await communicator.receive_nothing(timeout=0.5)  # open and quiet
    await database_sync_to_async(revoke)()
    # docs/contract.md#rbac: closed with 4403 within 5 s (the re-check interval is short here).
    output = await communicator.receive_output(timeout=5)
    await communicator.disconnect()
    return output.get("code") if output["type"] == "websocket.close" else None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["membership_deleted", "user_deactivated"])
def test_an_open_tenant_socket_is_closed_when_the_right_goes(how: str, settings: Any) -> None:
    settings.REALTIME_RECHECK_SECONDS = 0.2
    world = world_build()
    viewer = world.users["viewer"]
    token = token_for(viewer)

    def revoke() -> None:
        if how == "membership_deleted":
            Membership.objects.filter(user=viewer).delete()
        else:
            type(viewer).objects.filter(pk=viewer.pk).update(is_active=False)

    assert run_async(_close_code_after("/ws/tenants/acme/executions/", token, revoke)) == 4403


@pytest.mark.django_db(transaction=True)
def test_an_open_execution_socket_is_closed_when_the_membership_goes(settings: Any) -> None:
    settings.REALTIME_RECHECK_SECONDS = 0.2
    world = world_build()
    execution = execution_make(world, "dev")
    viewer = world.users["viewer"]
    token = token_for(viewer)
    path = f"/ws/executions/{execution.execution_id}/"

    def revoke() -> None:
        Membership.objects.filter(user=viewer).delete()

    assert run_async(_close_code_after(path, token, revoke)) == 4403


@pytest.mark.django_db
def test_a_tag_grant_on_an_asset_service_target_passes_the_workers_recheck(settings: Any) -> None:
    """The grant matched at submission (tags from the Asset Service, hostname target) and the
    worker's re-check resolves the target the same way: the execution runs."""
    from approvals.models import Approval
    from execution.models import QueueItem
    from execution.services.queue import queue_enqueue
    from execution.services.transition import transition
    from execution.worker.attempt import attempt_run
    from execution.worker.claim import claim_with_context

    world = world_build()
    operator = world.users["operator"]
    AccessGrantFactory(
        tenant=world.tenant, user=operator, environment="prod", action_class="modify", asset_tag="canary"
    )
    asset = {
        "id": "svc-42",
        "hostname": "canary-1",
        "connection_type": "ssh",  # a noop step never connects
        "address": "127.0.0.1",
        "tags": ["canary"],
    }

    def respond(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if path.startswith("/api/v1/tenants/acme/assets?hostname=canary-1"):
            return json_answer(200, {"results": [asset]})
        if path == "/api/v1/tenants/acme/assets/svc-42":
            return json_answer(200, asset)
        return json_answer(200, {"results": []}) if "?" in path else json_answer(404, {})

    plan = {
        "name": "probe the canary",
        "environment": "prod",
        "estimated_duration_seconds": 30,
        "steps": [
            {
                "name": "touch",
                "type": "noop",
                "target": {"hostname": "canary-1"},
                "params": {},
                "action_class": "modify",
            }
        ],
    }
    with LoopbackHttpServer(respond) as server:
        settings.ASSET_SERVICE_URL = server.url
        execution = execution_submit(tenant="acme", actor=operator, plan=plan).execution
        assert execution.status == ExecutionStatus.PENDING_APPROVAL  # prod modify: one approver
        Approval.objects.filter(execution=execution).update(state="approved")
        transition(Execution.objects.get(pk=execution.pk), ExecutionStatus.APPROVED)
        queue_enqueue(execution=Execution.objects.get(pk=execution.pk))
        # Claimable now: inside this test's transaction PostgreSQL's now() is its start.
        QueueItem.objects.filter(execution=execution).update(available_at=None)
        claim = claim_with_context(worker_id="test")
        assert claim is not None
        outcome = attempt_run(ctx=claim, worker_id="test")
    execution.refresh_from_db()
    assert not ExecutionEvent.objects.filter(
        execution_id=execution.execution_id, event_type="rbac_violation"
    ).exists(), execution.error_message
    assert outcome == ExecutionStatus.COMPLETED, execution.error_message
