"""The audit hash chain: sealing after the fact, export, verify naming the first broken row,
retention anchors, and a row committed after a later one was sealed."""

from __future__ import annotations

import io
import itertools
import json
from datetime import timedelta
from typing import Any

import psycopg2
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from execution.models import AuditLog, Execution, SecretAccess
from execution.models.audit import AuditChainEntry, AuditChainHead
from execution.services.audit_chain import GENESIS, audit_seal, link_hash
from execution.services.audit_export import audit_verify
from execution.services.retention import retention_prune
from tests.factories import AuditLogFactory, ExecutionEventFactory, ExecutionFactory, TenantFactory


def _trail(tenant: Any, actor: Any) -> Execution:
    execution = ExecutionFactory(tenant=tenant, actor=actor, status="completed")
    for kind in ("created", "approved", "queued", "started", "completed"):
        ExecutionEventFactory(execution=execution, event_type=kind, details={"n": kind, "amount": 1.5})
    AuditLogFactory(tenant=tenant, actor=actor, event_type="member_added", details={"user": "x"})
    SecretAccess.objects.create(
        tenant=tenant, actor=actor, execution_id=execution.execution_id, path="db:a/b"
    )
    return execution


def _verify_command(*args: str) -> tuple[str, str]:
    out = io.StringIO()
    try:
        call_command("audit", "verify", *args, stdout=out)
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), ""


@pytest.fixture
def sealed(tenant: Any, other_tenant: Any, operator: Any, outsider: Any) -> dict[str, Any]:
    executions = [_trail(tenant, operator), _trail(tenant, operator), _trail(other_tenant, outsider)]
    AuditLogFactory(tenant=None, event_type="rbac_violation", reason="unknown tenant")
    summary = audit_seal(settle_seconds=0)
    return {"executions": executions, "sealed": summary.sealed}


def test_every_row_is_sealed_once_in_its_tenants_chain(sealed: dict[str, Any], tenant: Any) -> None:
    # 3 trails x (5 events + 1 audit row + 1 secret access) + 1 audit row of no tenant; the
    # fixtures' memberships wrote no audit row.
    assert sealed["sealed"] == 3 * 7 + 1
    assert audit_seal(settle_seconds=0).sealed == 0  # nothing twice
    ours = list(AuditChainEntry.objects.filter(tenant_key=tenant.pk).order_by("seq"))
    assert [e.seq for e in ours] == list(range(1, 15))
    assert {e.source for e in ours} == {"event", "audit", "secret_access"}
    previous = GENESIS
    for entry in ours:
        assert entry.chain_hash == link_hash(previous, entry.row_hash)
        previous = entry.chain_hash
    assert AuditChainHead.objects.get(tenant_key=tenant.pk).chain_hash == previous
    assert AuditChainEntry.objects.filter(tenant_key=0).count() == 1


def test_export_is_the_tenants_chain_as_json_lines(sealed: dict[str, Any], tenant: Any) -> None:
    out = io.StringIO()
    call_command("audit", "export", "--tenant", tenant.slug, "--format", "jsonl", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, 15))
    assert lines[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["chain_hash"] for a, b in itertools.pairwise(lines))
    events = [line for line in lines if line["source"] == "event"]
    assert events[0]["record"]["event_type"] == "created" and events[0]["record"]["details"]["amount"] == 1.5
    assert {line["tenant"] for line in lines} == {tenant.slug}
    # --since: only rows created at or after it (all of them are recent).
    later = io.StringIO()
    since = (timezone.now() + timedelta(days=1)).date().isoformat()
    call_command("audit", "export", "--tenant", tenant.slug, "--since", since, stdout=later)
    assert later.getvalue() == ""
    with pytest.raises(CommandError, match="--since: 'yesterday' is not a date"):
        call_command("audit", "export", "--tenant", tenant.slug, "--since", "yesterday")


def test_verify_passes_on_an_untouched_trail(sealed: dict[str, Any]) -> None:
    out, error = _verify_command()
    assert error == ""
    assert "acme: 14 entries checked, ok" in out and "other: 7 entries checked, ok" in out
    assert all(r.ok for r in audit_verify())


def test_verify_names_an_altered_audit_row(sealed: dict[str, Any], tenant: Any) -> None:
    row = AuditLog.objects.filter(tenant=tenant).order_by("id").first()
    AuditLog.objects.filter(pk=row.pk).update(reason="nothing happened here")
    out, error = _verify_command("--tenant", tenant.slug)
    assert error.startswith(f"audit chain broken in acme: row altered: audit_log id {row.pk} (seq ")
    assert "other" not in out  # only the tenant asked for


def test_verify_names_a_deleted_secret_access(sealed: dict[str, Any], tenant: Any) -> None:
    row = SecretAccess.objects.filter(tenant=tenant).order_by("id").last()
    SecretAccess.objects.filter(pk=row.pk).delete()
    _, error = _verify_command()
    assert f"row missing: secret_access_audit id {row.pk}" in error


def test_verify_names_an_event_altered_past_the_append_only_trigger(
    sealed: dict[str, Any], tenant: Any
) -> None:
    event = sealed["executions"][1].events.order_by("id")[2]
    with connection.cursor() as cursor:
        # What someone with the database's superuser could do: triggers off for the session.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE execution_events SET event_type = 'failed' WHERE id = %s", [event.pk])
        cursor.execute("SET session_replication_role = DEFAULT")
    _, error = _verify_command("--tenant", "acme")
    assert f"row altered: execution_events id {event.pk}" in error


def test_verify_names_a_chain_entry_taken_out(sealed: dict[str, Any], tenant: Any) -> None:
    AuditChainEntry.objects.filter(tenant_key=tenant.pk, seq=5).delete()
    _, error = _verify_command()
    assert "chain entry missing: seq 5 (next is " in error


def test_verify_notices_the_tail_cut_off(sealed: dict[str, Any], tenant: Any) -> None:
    AuditChainEntry.objects.filter(tenant_key=tenant.pk, seq__gte=12).delete()
    # (verify alone: the command seals first, which would chain those rows again at seq 15.)
    [result] = audit_verify(tenant=tenant)
    assert result.problem == "chain entries missing after seq 11 (the head is at seq 14)"
    _, error = _verify_command("--tenant", "acme")
    assert "chain entry missing: seq 12 (next is " in error


def test_retention_anchors_what_it_prunes_and_the_chain_still_verifies(
    sealed: dict[str, Any], tenant: Any
) -> None:
    old = sealed["executions"][0]
    Execution.objects.filter(pk=old.pk).update(completed_at=timezone.now() - timedelta(days=100))
    retention_prune(older_than_days=90, batch_size=10)
    assert not Execution.objects.filter(pk=old.pk).exists()
    anchor = AuditLog.objects.get(event_type="audit_anchor", tenant=tenant)
    assert anchor.details["pruned"] == 5
    assert AuditChainEntry.objects.filter(pruned_by=anchor.pk).count() == 5
    results = {r.tenant: r for r in audit_verify()}
    assert results["acme"].ok, results["acme"].problem
    # Marking a live entry pruned (to hide its row's deletion) does not match the anchor.
    live = AuditChainEntry.objects.filter(
        tenant_key=tenant.pk, pruned_by__isnull=True, source="event"
    ).first()
    AuditChainEntry.objects.filter(pk=live.pk).update(pruned_by=anchor.pk)
    problem = {r.tenant: r for r in audit_verify()}["acme"].problem
    assert problem.startswith("pruned entries (seq ") and f"anchor audit_log id {anchor.pk}" in problem


def test_rows_of_a_new_tenant_start_a_chain_of_their_own(sealed: dict[str, Any]) -> None:
    newcomer = TenantFactory(slug="newco")
    AuditLogFactory(tenant=newcomer)
    audit_seal(settle_seconds=0)
    entry = AuditChainEntry.objects.get(tenant_key=newcomer.pk)
    assert entry.seq == 1 and entry.chain_hash == link_hash(GENESIS, entry.row_hash)


@pytest.mark.django_db(transaction=True)
def test_a_row_committed_after_a_later_one_was_sealed_is_still_sealed(tenant: Any) -> None:
    """Ids are taken at insert, rows become visible at commit: row N+1 may be sealed while
    row N's transaction is still open. The low-water mark stays behind rows younger than the
    settle time, so N is sealed by the next run after it commits."""
    params = connection.get_connection_params()
    slow = psycopg2.connect(**params)
    try:
        with slow.cursor() as cursor:
            cursor.execute(
                "INSERT INTO audit_log (tenant_id, event_type, reason, details, created_at) "
                "VALUES (%s, 'slow', '', '{}', now()) RETURNING id",
                [tenant.pk],
            )
            slow_id = cursor.fetchone()[0]
        fast = AuditLogFactory(tenant=tenant, event_type="fast")
        assert fast.pk > slow_id
        assert audit_seal().sealed == 1  # the default settle time: 30 s
        slow.commit()
    finally:
        slow.close()
    assert audit_seal().sealed == 1
    sealed_ids = list(
        AuditChainEntry.objects.filter(tenant_key=tenant.pk, source="audit")
        .order_by("seq")
        .values_list("source_id", flat=True)
    )
    assert sealed_ids == [fast.pk, slow_id]
    assert all(r.ok for r in audit_verify())
