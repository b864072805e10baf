"""The doors of each right, driven like a person would: REST, page POST, admin action,
``manage.py --user``, WebSocket subscribe and the worker's re-check before start. Each
returns whether the door *did* it, judged by the effect (the row changed, the socket stayed
open, the steps ran), not by what it said. The personas and what they may do are in
tests/execution/policy/contract.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from approvals.models import Approval, ApprovalVote
from approvals.services import approval_request
from execution.enums import ExecutionStatus, Role
from execution.models import (
    ApiToken,
    AuditLog,
    DeadLetter,
    Execution,
    ExecutionEvent,
    ExecutionStep,
    Membership,
    Tenant,
)
from execution.policy import Right
from execution.services.tokens import token_hash
from tests.execution.policy.contract import PERSONAS, Work
from tests.execution.realtime.live import run_async
from tests.factories import (
    DeadLetterFactory,
    ExecutionFactory,
    MembershipFactory,
    TenantFactory,
    UserFactory,
    token_for,
)

# The work of each environment when a test names only the environment (a mix, so the
# operator's limits show).
WORK = {"dev": "read", "staging": "deploy", "prod": "deploy"}


@dataclass
class World:
    tenant: Tenant
    requester: Any
    users: dict[str, Any] = field(default_factory=dict)


def world_build() -> World:
    """Tenant ``acme`` with one user per persona (staff, so the admin is a door for them), and
    ``other``. The executions, approvals and dead letters the doors make are the requester's."""
    tenants = {"acme": TenantFactory(slug="acme"), "other": TenantFactory(slug="other")}
    users = {}
    for name, persona in PERSONAS.items():
        user = UserFactory(username=f"{name}-user", is_staff=True)
        MembershipFactory(tenant=tenants[persona.tenant], user=user, role=persona.role)
        users[name] = user
    return World(tenant=tenants["acme"], requester=users["requester"], users=users)


def deactivate_after_login(user: Any) -> None:
    """Sessions and tokens exist already; the account is switched off afterwards."""
    user.is_active = False
    user.save(update_fields=["is_active"])


def records() -> int:
    """rbac_violation rows so far: events on executions plus audit rows."""
    return (
        ExecutionEvent.objects.filter(event_type="rbac_violation").count()
        + AuditLog.objects.filter(event_type="rbac_violation").count()
    )


def rest(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- objects -------------------------------------------------------------------------------


def execution_make(
    world: World,
    environment: str,
    status: str = ExecutionStatus.QUEUED,
    *,
    action_class: str | None = None,
    actor: Any = None,
) -> Execution:
    action = action_class or WORK[environment]
    plan = {
        "name": f"{action} in {environment}",
        "environment": environment,
        "steps": [{"name": "work", "type": "noop", "params": {}, "action_class": action}],
    }
    execution = ExecutionFactory(
        tenant=world.tenant,
        actor=actor or world.requester,
        plan_snapshot=plan,
        environment=environment,
        action_class=action,
        status=status,
    )
    ExecutionStep.objects.create(
        execution=execution, step_index=0, step_name="work", step_type="noop", action_class=action
    )
    return execution


def dead_letter_make(world: World, environment: str, action_class: str | None = None) -> DeadLetter:
    return DeadLetterFactory(
        execution=execution_make(world, environment, ExecutionStatus.FAILED, action_class=action_class)
    )


def approval_make(world: World, environment: str, action_class: str | None = None) -> Approval:
    execution = execution_make(
        world, environment, ExecutionStatus.PENDING_APPROVAL, action_class=action_class
    )
    execution.approval_level = 2
    execution.save(update_fields=["approval_level"])
    return approval_request(execution=execution, level=2)


def _command(*args: str) -> bool:
    try:
        call_command(*args)
    except CommandError as refused:
        print(f"command refused: {refused}")
        return False
    return True


def _admin_action(user: Any, changelist: str, action: str, pk: Any, **extra: str) -> None:
    browser(user).post(changelist, {"action": action, ACTION_CHECKBOX_NAME: [pk], "index": 0, **extra})


# --- doors per right: (world, user, work) -> did it happen ------------------------------------

Door = Callable[[World, Any, Work], bool]


def _cancelled(execution: Execution) -> bool:
    return Execution.objects.get(pk=execution.pk).status == ExecutionStatus.CANCELLED


def cancel_rest(w: World, user: Any, work: Work) -> bool:
    execution = execution_make(w, work[0], action_class=work[1])
    rest(user).post(f"/api/v1/executions/{execution.execution_id}/cancel/")
    return _cancelled(execution)


def cancel_page(w: World, user: Any, work: Work) -> bool:
    execution = execution_make(w, work[0], action_class=work[1])
    browser(user).post(f"/executions/{execution.execution_id}/cancel/")
    return _cancelled(execution)


def cancel_admin(w: World, user: Any, work: Work) -> bool:
    execution = execution_make(w, work[0], action_class=work[1])
    _admin_action(user, "/admin/execution/execution/", "cancel_selected", execution.pk)
    return _cancelled(execution)


def cancel_command(w: World, user: Any, work: Work) -> bool:
    execution = execution_make(w, work[0], action_class=work[1])
    _command("cancel", str(execution.execution_id), "--user", user.username)
    return _cancelled(execution)


def _requeued(entry: DeadLetter) -> bool:
    return DeadLetter.objects.get(pk=entry.pk).requeued


def requeue_rest(w: World, user: Any, work: Work) -> bool:
    entry = dead_letter_make(w, *work)
    rest(user).post(f"/api/v1/dlq/{entry.dlq_id}/requeue/")
    return _requeued(entry)


def requeue_page(w: World, user: Any, work: Work) -> bool:
    entry = dead_letter_make(w, *work)
    browser(user).post(f"/dlq/{entry.dlq_id}/requeue/")
    return _requeued(entry)


def requeue_admin(w: World, user: Any, work: Work) -> bool:
    entry = dead_letter_make(w, *work)
    _admin_action(user, "/admin/execution/deadletter/", "requeue_dead_letters", entry.pk, confirm="yes")
    return _requeued(entry)


def requeue_command(w: World, user: Any, work: Work) -> bool:
    entry = dead_letter_make(w, *work)
    _command("dlq", "requeue", str(entry.dlq_id), "--user", user.username)
    return _requeued(entry)


def archive_admin(w: World, user: Any, work: Work) -> bool:
    entry = dead_letter_make(w, *work)
    _admin_action(user, "/admin/execution/deadletter/", "archive_dead_letters", entry.pk, confirm="yes")
    return DeadLetter.objects.get(pk=entry.pk).archived


def archive_command(w: World, user: Any, work: Work) -> bool:
    entry = dead_letter_make(w, *work)
    _command("dlq", "archive", str(entry.dlq_id), "--user", user.username)
    return DeadLetter.objects.get(pk=entry.pk).archived


def _voted(approval: Approval, user: Any) -> bool:
    return ApprovalVote.objects.filter(approval=approval, voter_id=user.pk).exists()


def vote_rest(w: World, user: Any, work: Work) -> bool:
    approval = approval_make(w, *work)
    rest(user).post(f"/api/v1/executions/{approval.execution.execution_id}/approve/", {}, format="json")
    return _voted(approval, user)


def vote_page(w: World, user: Any, work: Work) -> bool:
    approval = approval_make(w, *work)
    browser(user).post(f"/approvals/{approval.approval_id}/", {"decision": "approve"})
    return _voted(approval, user)


def vote_admin(w: World, user: Any, work: Work) -> bool:
    approval = approval_make(w, *work)
    _admin_action(
        user, "/admin/approvals/approval/", "approve_selected", approval.pk, confirm="yes", comment=""
    )
    return _voted(approval, user)


def vote_command(w: World, user: Any, work: Work) -> bool:
    approval = approval_make(w, *work)
    _command("approve", str(approval.execution.execution_id), "--user", user.username)
    return _voted(approval, user)


def read_rest(w: World, user: Any, work: Work) -> bool:
    execution = execution_make(w, work[0], action_class=work[1])
    return rest(user).get(f"/api/v1/executions/{execution.execution_id}/").status_code == 200


def read_page(w: World, user: Any, work: Work) -> bool:
    execution = execution_make(w, work[0], action_class=work[1])
    return browser(user).get(f"/executions/{execution.execution_id}/").status_code == 200


def read_admin(w: World, user: Any, work: Work) -> bool:
    execution = execution_make(w, work[0], action_class=work[1])
    return browser(user).get(f"/admin/execution/execution/{execution.pk}/change/").status_code == 200


def _submit_body(work: Work, door: str) -> dict[str, Any]:
    env, action = work
    return {
        "tenant": "acme",
        "plan": {
            "name": f"{action} submitted to {env} through {door}",  # distinct: no idempotent replay
            "environment": env,
            "estimated_duration_seconds": 30,
            "steps": [{"name": "work", "type": "noop", "params": {}, "action_class": action}],
        },
    }


def submit_rest(w: World, user: Any, work: Work) -> bool:
    before = Execution.objects.count()
    rest(user).post("/api/v1/executions/", _submit_body(work, "rest"), format="json")
    return Execution.objects.count() > before


def submit_command(w: World, user: Any, work: Work) -> bool:
    import json
    import tempfile

    before = Execution.objects.count()
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(_submit_body(work, "command"), handle)
        handle.flush()
        _command("submit", handle.name, "--user", user.username)
    return Execution.objects.count() > before


def submit_worker(w: World, user: Any, work: Work) -> bool:
    """The worker's re-check before start: an execution of ``user`` that is queued (its right
    may have changed since it was submitted) runs only if the policy still allows it."""
    from execution.worker.attempt import attempt_run
    from execution.worker.claim import context_for

    execution = execution_make(w, work[0], action_class=work[1], actor=user)
    attempt_run(ctx=context_for(pk=execution.pk), worker_id="doors")
    return Execution.objects.get(pk=execution.pk).status == ExecutionStatus.COMPLETED


def secret_set_admin(w: World, user: Any, work: Work) -> bool:
    path = f"acme/{user.username}"
    browser(user).post(
        "/admin/execution/secretentry/add/",
        {"tenant": w.tenant.pk, "path": path, "description": "", "value": "a-long-enough-value"},
    )
    from execution.models import SecretEntry

    return SecretEntry.objects.filter(path=path).exists()


def secret_list_admin(w: World, user: Any, work: Work) -> bool:
    from execution.secrets.store import secret_set

    secret_set(tenant=w.tenant, path="acme/listed-here", value="a-long-enough-value")
    response = browser(user).get("/admin/execution/secretentry/")
    return response.status_code == 200 and "acme/listed-here" in response.content.decode()


def members_admin(w: World, user: Any, work: Work) -> bool:
    newcomer = UserFactory(username=f"new-for-{user.username}")
    browser(user).post(
        "/admin/execution/membership/add/",
        {"tenant": w.tenant.pk, "user": newcomer.pk, "role": Role.VIEWER, "created_at": ""},
    )
    return Membership.objects.filter(user=newcomer).exists()


def members_page(w: World, user: Any, work: Work) -> bool:
    newcomer = UserFactory(username=f"paged-for-{user.username}")
    browser(user).post(
        "/tenants/acme/members/", {"action": "add", "username": newcomer.username, "role": Role.VIEWER}
    )
    return Membership.objects.filter(user=newcomer).exists()


def configure_admin(w: World, user: Any, work: Work) -> bool:
    from execution.models import ReadOnlyCommandRule

    pattern = f"systemctl status {user.username}"
    browser(user).post(
        "/admin/execution/readonlycommandrule/add/", {"tenant": w.tenant.pk, "pattern": pattern}
    )
    return ReadOnlyCommandRule.objects.filter(tenant=w.tenant, pattern=pattern).exists()


def configure_page(w: World, user: Any, work: Work) -> bool:
    from monitoring.notifications.models import NotificationSubscription

    name = f"page-{user.username}"
    form = {
        "tenant": w.tenant.pk,
        "name": name,
        "kinds": ["failed"],
        "channel": "email",
        "destination": "oncall@example.com",
        "environment": "",
        "is_active": "on",
    }
    browser(user).post("/notifications/", form)
    return NotificationSubscription.objects.filter(name=name).exists()


def token_issue_page(w: World, user: Any, work: Work) -> bool:
    browser(user).post("/tenants/acme/members/", {"action": "token-issue", "user": user.pk, "name": "paged"})
    return ApiToken.objects.filter(user=user, tenant=w.tenant, name="paged").exists()


def token_issue_rest(w: World, user: Any, work: Work) -> bool:
    rest(user).post("/api/v1/tokens/", {"tenant": "acme", "name": "rested"}, format="json")
    return ApiToken.objects.filter(user=user, tenant=w.tenant, name="rested").exists()


def _own_token(w: World, user: Any, name: str) -> ApiToken:
    """A token of ``user`` bound to acme (for the outsider: one left from an old membership)."""
    return ApiToken.objects.create(
        user=user, tenant=w.tenant, name=name, key_hash=token_hash(uuid.uuid4().hex), prefix="00000000"
    )


def token_revoke_page(w: World, user: Any, work: Work) -> bool:
    token = _own_token(w, user, "revoked-on-page")
    browser(user).post("/tenants/acme/members/", {"action": "token-revoke", "token": str(token.token_id)})
    return not ApiToken.objects.filter(pk=token.pk).exists()


def token_revoke_rest(w: World, user: Any, work: Work) -> bool:
    token = _own_token(w, user, "revoked-by-rest")
    rest(user).delete(f"/api/v1/tokens/{token.token_id}/")
    return not ApiToken.objects.filter(pk=token.pk).exists()


async def _subscribe(path: str, token: str) -> bool:
    from channels.testing import WebsocketCommunicator

    from opsconductor.asgi import application

    communicator = WebsocketCommunicator(application, f"{path}?token={token}")
    connected, _ = await communicator.connect(timeout=10)
    if not connected:
        return False
    # Refused sockets are accepted, then closed with 4401/4403/4404 (a code needs a handshake).
    while not await communicator.receive_nothing(timeout=1):
        output = await communicator.receive_output(timeout=1)
        if output["type"] == "websocket.close":
            await communicator.disconnect()
            return False
    await communicator.disconnect()
    return True


def subscribe_execution(w: World, user: Any, work: Work) -> bool:
    execution = execution_make(w, work[0], action_class=work[1])
    token = token_for(user)
    return run_async(_subscribe(f"/ws/executions/{execution.execution_id}/", token))


def subscribe_tenant(w: World, user: Any, work: Work) -> bool:
    token = token_for(user)
    return run_async(_subscribe("/ws/tenants/acme/executions/", token))


DOORS: dict[Right, dict[str, Door]] = {
    Right.CANCEL: {
        "rest": cancel_rest,
        "page": cancel_page,
        "admin": cancel_admin,
        "command": cancel_command,
    },
    Right.REQUEUE: {
        "rest": requeue_rest,
        "page": requeue_page,
        "admin": requeue_admin,
        "command": requeue_command,
    },
    Right.ARCHIVE: {"admin": archive_admin, "command": archive_command},
    Right.VOTE: {"rest": vote_rest, "page": vote_page, "admin": vote_admin, "command": vote_command},
    Right.READ: {"rest": read_rest, "page": read_page, "admin": read_admin},
    Right.SUBMIT: {"rest": submit_rest, "command": submit_command, "worker": submit_worker},
    Right.SECRET_SET: {"admin": secret_set_admin},
    Right.SECRET_LIST: {"admin": secret_list_admin},
    Right.MANAGE_MEMBERS: {"admin": members_admin, "page": members_page},
    Right.CONFIGURE: {"admin": configure_admin, "page": configure_page},
    Right.SUBSCRIBE: {"websocket-execution": subscribe_execution, "websocket-tenant": subscribe_tenant},
    Right.TOKEN_ISSUE: {"page": token_issue_page, "rest": token_issue_rest},
    Right.TOKEN_REVOKE: {"page": token_revoke_page, "rest": token_revoke_rest},
}
# Doors that authenticate a request before the policy sees it: a deactivated account is
# refused there (401, login page, 4401) without an rbac_violation; commands name the user.
AUTHENTICATED_DOORS = {"rest", "page", "admin", "websocket-execution", "websocket-tenant"}
