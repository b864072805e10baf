"""The release checklist of docs/contract.md#monitoring, executed: ``manage.py go_no_go`` prints GO or
NO-GO."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection

from execution.enums import PG_ENUMS
from execution.secrets.health import FAILING, secrets_backends_check
from monitoring.services.readiness import (
    CheckResult,
    check_channel_layer,
    check_database,
    check_migrations,
    check_policies,
    check_workers,
)

REQUIRED_TABLES = [
    "executions",
    "execution_steps",
    "approvals",
    "execution_events",
    "execution_queue",
    "execution_dlq",
    "execution_locks",
    "timeout_policies",
    "worker_heartbeats",
    "sla_alerts",
]
# Known credentials and credential-shaped strings: (name, text, resolved values, must vanish).
MASKING_SAMPLES: list[tuple[str, str, list[str], str]] = [
    (
        "resolved secret value",
        "deploy with s3cr3t-Zq81-canary now",
        ["s3cr3t-Zq81-canary"],
        "s3cr3t-Zq81-canary",
    ),
    ("bearer header", "Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl", [], "c2lnbmF0dXJl"),
    ("aws access key", "key=AKIAIOSFODNN7EXAMPLE", [], "AKIAIOSFODNN7EXAMPLE"),
    ("connection string", "postgres://app:pw-9f2k1@db.internal:5432/app", [], "pw-9f2k1"),
    ("password assignment", "password=hunter2-Xq", [], "hunter2-Xq"),
]


def _guard(name: str, func: Callable[[], CheckResult]) -> CheckResult:
    try:
        return func()
    except Exception as exc:  # a failing check is a NO-GO reason, never a crash
        return CheckResult(name, False, " ".join(f"{type(exc).__name__}: {exc}".split())[:300])


def check_schema() -> CheckResult:
    def run() -> CheckResult:
        present = set(connection.introspection.table_names())
        missing = [t for t in REQUIRED_TABLES if t not in present]
        if missing:
            return CheckResult("schema", False, f"missing tables: {', '.join(missing)}")
        return CheckResult("schema", True, f"{len(REQUIRED_TABLES)} tables present")

    return _guard("schema", run)


def check_enums() -> CheckResult:
    def run() -> CheckResult:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) "
                "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                "WHERE t.typname = ANY(%s) GROUP BY t.typname",
                [list(PG_ENUMS)],
            )
            found = {name: list(values) for name, values in cursor.fetchall()}
        problems = []
        for name, values in PG_ENUMS.items():
            if name not in found:
                problems.append(f"{name} missing")
            elif found[name] != values:
                problems.append(f"{name} is {found[name]}, expected {values}")
        if problems:
            return CheckResult("enums", False, "; ".join(problems))
        return CheckResult("enums", True, ", ".join(f"{n} ({len(v)})" for n, v in PG_ENUMS.items()))

    return _guard("enums", run)


def check_secret_backends() -> CheckResult:
    """Fails when a configured backend cannot serve; says which are not configured."""

    def run() -> CheckResult:
        report = secrets_backends_check()
        failing = [f"{name}: {r['detail']}" for name, r in report.items() if r["state"] == FAILING]
        if failing:
            return CheckResult("secret_backends", False, "; ".join(failing))
        summary = ", ".join(
            f"{name}: {report[name]['state']}"
            + (f" ({report[name]['detail']})" if report[name]["detail"] else "")
            for name in sorted(report)
        )
        return CheckResult("secret_backends", True, summary)

    return _guard("secret_backends", run)


def check_masking() -> CheckResult:
    def run() -> CheckResult:
        from execution.masking import mask_text

        leaked = []
        for name, text, values, secret in MASKING_SAMPLES:
            if secret in mask_text(text, values):
                leaked.append(name)
        from execution.secrets.health import masking_self_test

        leaked.extend(f"secrets self-test: {p}" for p in masking_self_test())
        if leaked:
            return CheckResult("masking", False, "not masked: " + ", ".join(leaked))
        return CheckResult("masking", True, f"{len(MASKING_SAMPLES)} samples masked, self-test passed")

    return _guard("masking", run)


def release_checklist_run() -> list[CheckResult]:
    """Every item of the release checklist, in order (all run even when one fails)."""
    database = check_database()
    if database.ok:
        stored = [check_schema(), check_enums(), check_migrations(), check_policies(), check_workers()]
    else:
        stored = [
            CheckResult(name, False, "skipped: database unreachable")
            for name in ("schema", "enums", "migrations", "policies", "workers")
        ]
    channel_layer = check_channel_layer(database_ok=database.ok)
    return [database, *stored, check_secret_backends(), channel_layer, check_masking()]
