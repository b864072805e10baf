"""The PgBouncer mode (``OPS_DB_PREPARE=false``, docs/engine.md) against a real PgBouncer in
transaction pooling: ``manage.py submit`` and a real worker cluster reach the database only
through it, and every execution completes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from execution.enums import Role
from execution.models import Execution, ExecutionEvent
from tests.approvals.conftest import ensure_policies
from tests.execution.engine.helpers import wait_until, worker_cluster
from tests.factories import LocalAssetFactory, MembershipFactory, UserFactory
from tests.support.pgbouncer import pgbouncer
from tests.support.processes import REPO_ROOT, manage_argv, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
RUNS = 6


def test_submit_worker_completed_through_pgbouncer_in_transaction_pooling(
    tenant: Any, tmp_path: Path
) -> None:
    ensure_policies()
    operator = UserFactory(username="olga-operator")
    MembershipFactory(tenant=tenant, user=operator, role=Role.OPERATOR)
    asset = LocalAssetFactory(tenant=tenant)
    plan = {
        "name": "through the pooler",
        "environment": "dev",
        "steps": [
            {
                "name": "say",
                "type": "command",
                "target": {"asset_id": asset.pk},
                "params": {"command": "echo pooled"},
            },
            {"name": "then", "type": "noop"},
        ],
    }
    # Two server sessions for every client: consecutive transactions of one client land on
    # different sessions, where a prepared statement of another one does not exist.
    with pgbouncer(pool_size=2) as bouncer:
        assert "transaction" in bouncer.admin("SHOW CONFIG").split("pool_mode|", 1)[1].split("\n", 1)[0]
        env = subprocess_env(DATABASE_URL=bouncer.url, OPS_DB_PREPARE="false")
        log = tmp_path / "qcluster.log"
        with worker_cluster(workers=2, log=log.open("wb"), DATABASE_URL=bouncer.url, OPS_DB_PREPARE="false"):
            ids = []
            for run in range(RUNS):
                plan_file = tmp_path / f"plan-{run}.json"  # another plan each time: never a replay
                plan_file.write_text(json.dumps({**plan, "name": f"through the pooler #{run}"}))
                submitted = subprocess.run(
                    manage_argv(
                        "submit",
                        str(plan_file),
                        "--tenant",
                        tenant.slug,
                        "--user",
                        operator.username,
                        "--json",
                    ),
                    cwd=REPO_ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert submitted.returncode == 0, submitted.stderr[-2000:]
                ids.append(json.loads(submitted.stdout)["execution_id"])
            assert len(set(ids)) == RUNS

            def finished() -> bool:
                statuses = set(
                    Execution.objects.filter(execution_id__in=ids).values_list("status", flat=True)
                )
                return statuses <= {"completed", "failed", "cancelled", "timeout", "partial"}

            try:
                wait_until(finished, 180, interval=0.5, what="every execution through the pooler")
            except AssertionError:
                raise AssertionError(log.read_text()[-3000:] + bouncer.log.read_text()[-2000:]) from None
        stats = {
            line.split("|")[0]: line.split("|")
            for line in bouncer.admin("SHOW STATS").splitlines()
            if line and not line.startswith("pgbouncer")
        }
    assert set(Execution.objects.filter(execution_id__in=ids).values_list("status", flat=True)) == {
        "completed"
    }
    outputs = ExecutionEvent.objects.filter(execution__execution_id__in=ids, event_type="step_output")
    assert outputs.count() >= RUNS and all("pooled" in str(e.details) for e in outputs)
    # The traffic went through PgBouncer: hundreds of transactions on the test database.
    assert int(stats[bouncer.database][1]) > 10 * RUNS, stats
    assert "prepared statement" not in log.read_text()
