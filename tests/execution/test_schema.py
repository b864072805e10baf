"""docs/contract.md#data-model in the database itself: enum types, table columns, constraints, seeded policies."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DataError

from execution.enums import PG_ENUMS
from tests.factories import ExecutionFactory, ExecutionStepFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

SPEC_ENUMS = {
    "execution_status": [
        "pending_approval",
        "approved",
        "rejected",
        "queued",
        "running",
        "completed",
        "failed",
        "cancelled",
        "timeout",
        "partial",
    ],
    "execution_mode": ["immediate", "background"],
    "sla_class": ["fast", "medium", "long"],
    "approval_state": ["pending", "approved", "rejected", "expired"],
}

SPEC_COLUMNS = {
    "executions": """id execution_id tenant_id actor_id idempotency_key plan_snapshot execution_mode sla_class
        approval_level status previous_status status_changed_at created_at started_at completed_at timeout_at
        result error_message error_details trace_id parent_execution_id tags metadata updated_at""",
    "execution_steps": """id step_id execution_id step_index step_name step_type target_asset_id target_hostname
        status started_at completed_at duration_ms input_data output_data artifacts error_message error_details
        retry_count max_retries trace_id logs created_at updated_at""",
    "approvals": """id approval_id execution_id approval_level plan_hash approver_id approver_comment state
        requested_at expires_at responded_at created_at updated_at""",
    "execution_events": """id event_id execution_id event_type from_status to_status actor_id actor_type details
        error_message created_at trace_id""",
    "execution_queue": """id queue_id execution_id priority sla_class lease_token lease_expires_at
        visibility_timeout_seconds attempt_count max_attempts last_error enqueued_at dequeued_at completed_at
        status created_at updated_at""",
    "execution_dlq": """id dlq_id execution_id failure_reason failure_details attempt_count last_error
        original_queue_id sla_class failed_at requeued requeued_at requeued_by created_at""",
    "execution_locks": """id lock_id asset_id tenant_id execution_id owner_tag acquired_at expires_at
        last_heartbeat_at is_active created_at updated_at""",
    "timeout_policies": """id sla_class action_class step_timeout_seconds execution_timeout_seconds
        lease_timeout_seconds approval_timeout_seconds max_attempts description created_at updated_at""",
}

ENUM_COLUMNS = {
    ("executions", "status"): "execution_status",
    ("executions", "previous_status"): "execution_status",
    ("executions", "execution_mode"): "execution_mode",
    ("executions", "sla_class"): "sla_class",
    ("execution_steps", "status"): "execution_status",
    ("approvals", "state"): "approval_state",
    ("execution_events", "from_status"): "execution_status",
    ("execution_events", "to_status"): "execution_status",
    ("execution_queue", "sla_class"): "sla_class",
    ("execution_dlq", "sla_class"): "sla_class",
    ("timeout_policies", "sla_class"): "sla_class",
}

POLICY_MATRIX = {
    ("fast", "read"): (5, 10, 15, 300, 3),
    ("fast", "modify"): (8, 15, 20, 600, 3),
    ("fast", "deploy"): (10, 20, 30, 900, 3),
    ("medium", "read"): (15, 30, 45, 600, 5),
    ("medium", "modify"): (20, 45, 60, 900, 5),
    ("medium", "deploy"): (30, 60, 90, 1800, 5),
    ("long", "read"): (60, 300, 360, 1800, 3),
    ("long", "modify"): (120, 600, 720, 3600, 3),
    ("long", "deploy"): (300, 1800, 2160, 7200, 3),
}


def fetch(sql: str, params: list | None = None) -> list[tuple]:  # type: ignore[type-arg]
    with connection.cursor() as cur:
        cur.execute(sql, params or [])
        return cur.fetchall()


def test_enum_types_exist_with_the_spec_values_in_order() -> None:
    for name, values in SPEC_ENUMS.items():
        rows = fetch(
            "SELECT e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
            "WHERE t.typname = %s ORDER BY e.enumsortorder",
            [name],
        )
        assert [r[0] for r in rows] == values
    assert PG_ENUMS == SPEC_ENUMS


def test_tables_have_the_spec_columns() -> None:
    for table, columns in SPEC_COLUMNS.items():
        rows = fetch("SELECT column_name FROM information_schema.columns WHERE table_name = %s", [table])
        present = {r[0] for r in rows}
        missing = set(columns.split()) - present
        assert not missing, f"{table} lacks {missing}"


def test_enum_columns_use_the_enum_types() -> None:
    for (table, column), enum in ENUM_COLUMNS.items():
        rows = fetch(
            "SELECT udt_name FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
            [table, column],
        )
        assert rows == [(enum,)], (table, column)


def test_timestamps_are_timezone_aware() -> None:
    rows = fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_name = ANY(%s) AND data_type = 'timestamp without time zone'",
        [list(SPEC_COLUMNS)],
    )
    assert rows == []


def test_child_tables_reference_the_public_execution_uuid() -> None:
    rows = fetch(
        """
        SELECT tc.table_name, ccu.table_name, ccu.column_name
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name
        JOIN information_schema.constraint_column_usage ccu ON tc.constraint_name = ccu.constraint_name
        WHERE tc.constraint_type = 'FOREIGN KEY' AND kcu.column_name = 'execution_id'
        """
    )
    referenced = {r[0]: (r[1], r[2]) for r in rows}
    for child in (
        "execution_steps",
        "approvals",
        "execution_events",
        "execution_queue",
        "execution_dlq",
        "execution_locks",
    ):
        assert referenced.get(child) == ("executions", "execution_id"), child


def test_database_refuses_an_unknown_enum_value() -> None:
    execution = ExecutionFactory()
    for column, bad in (("status", "exploded"), ("execution_mode", "later"), ("sla_class", "slow")):
        with pytest.raises(DataError), transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"UPDATE executions SET {column} = %s WHERE id = %s", [bad, execution.pk])
    with pytest.raises(DataError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT 'maybe'::approval_state")
    with connection.cursor() as cur:
        cur.execute("UPDATE executions SET status = 'queued' WHERE id = %s", [execution.pk])
        assert cur.rowcount == 1


def test_approval_level_check_and_idempotency_uniqueness() -> None:
    execution = ExecutionFactory()
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE executions SET approval_level = 4 WHERE id = %s", [execution.pk])
    with pytest.raises(IntegrityError), transaction.atomic():
        ExecutionFactory(tenant=execution.tenant, idempotency_key=execution.idempotency_key)
    # Another tenant may use the same key; released (NULL) keys never collide.
    ExecutionFactory(tenant=TenantFactory(), idempotency_key=execution.idempotency_key)
    ExecutionFactory(tenant=execution.tenant, idempotency_key=None, actor=UserFactory())
    ExecutionFactory(tenant=execution.tenant, idempotency_key=None, actor=UserFactory())
    with pytest.raises(IntegrityError), transaction.atomic():
        ExecutionFactory(idempotency_key="not-hex")


def test_step_index_unique_and_artifacts_capped_at_10kb() -> None:
    step = ExecutionStepFactory(step_index=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        ExecutionStepFactory(execution=step.execution, step_index=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        ExecutionStepFactory(execution=step.execution, step_index=1, artifacts={"blob": "x" * 11000})
    ExecutionStepFactory(execution=step.execution, step_index=2, artifacts={"blob": "x" * 9000})


def test_nine_policies_are_seeded_exactly_as_the_spec_matrix() -> None:
    rows = fetch(
        "SELECT sla_class::text, action_class, step_timeout_seconds, execution_timeout_seconds, "
        "lease_timeout_seconds, approval_timeout_seconds, max_attempts FROM timeout_policies"
    )
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == POLICY_MATRIX
    assert len(rows) == 9


def test_indexes_for_the_hot_queries_exist() -> None:
    names = {r[0] for r in fetch("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    for index in (
        "executions_tenant_idem_key",
        "queue_claim_pending",
        "events_execution_id",
        "locks_active_expiry",
        "approvals_state_expiry",
    ):
        assert index in names
