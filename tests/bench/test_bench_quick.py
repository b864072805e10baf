"""CI runs every bench script in its short form against the test database.

The scripts measure speed and print figures (compared with a baseline in the same run); this
test checks that they run to the end on real processes and print every figure. It asserts
no timing: speed is reported in notes, never asserted (see bench/*.py for the long forms).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import processes
from tests.support.redis import suite_redis_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BENCH = Path(__file__).resolve().parents[2] / "bench"
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def run_bench(script: str, *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        env=processes.subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{script} exited {result.returncode}: {result.stderr[-2000:]}"
    return result.stdout


def test_queue_throughput_quick() -> None:
    out = run_bench("queue_throughput.py", "--quick")
    assert re.search(
        rf"executions through the queue \(noop\): 50 on 2 workers: {NUMBER} executions/s", out
    ), out
    assert re.search(rf"idle start latency .*10 samples: p50 {NUMBER} ms, p99 {NUMBER} ms", out), out
    assert re.search(rf"one django-q2 task per execution: 50 .* ratio ours / baseline {NUMBER}", out), out
    assert re.search(rf"raw async_task no-op .* {NUMBER} tasks/s", out), out
    assert re.search(rf"ratio ours / django-q2 raw no-op: {NUMBER}", out), out


def test_claim_quick_prints_each_tenant_count_and_the_full_tenant_case() -> None:
    out = run_bench("claim.py", "--quick")
    for case in ("over 1 tenant", "over 10 tenant", "over 100 tenant", "by a tenant at its limit"):
        assert re.search(
            rf"{case}.*: claim p50 {NUMBER} ms, p99 {NUMBER} ms; "
            rf"baseline \(last engine's claim\) p50 {NUMBER} ms, p99 {NUMBER} ms",
            out,
        ), out
    assert "the bench's rows were deleted" in out, out
    from execution.models import Execution

    assert not Execution.objects.exists()


def test_locks_quick_prints_every_run_and_the_ratios() -> None:
    out = run_bench("locks.py", "--quick")
    for name in ("no target", r"hot asset \(modify\)", r"read asset \(read\)"):
        assert re.search(
            rf"{name}: 50 noop executions on 2 workers: {NUMBER} executions/s, ratio to no target {NUMBER}; "
            r"lock waits [0-9]+",
            out,
        ), out
    assert re.search(rf"goals: hot asset >= 0.5 \(got {NUMBER}\), read asset >= 0.9 \(got {NUMBER}\)", out), (
        out
    )


def test_rest_submit_quick_drains_every_submission() -> None:
    out = run_bench("rest_submit.py", "--quick")
    assert re.search(
        rf"REST submissions: 100 from 8 clients to 1 web process\(es\): {NUMBER} submissions/s", out
    ), out
    assert re.search(r"completed in all: 100/100", out), out
    assert re.search(rf"GET /healthz on the same web process\(es\): {NUMBER} requests/s", out), out
    assert re.search(
        rf"CPU per request: submission {NUMBER} ms, /healthz {NUMBER} ms; one free core serves {NUMBER} ", out
    ), out


def test_ws_latency_quick_on_both_paths_delivers_every_event() -> None:
    out = run_bench("ws_latency.py", "--quick", "--redis-url", suite_redis_url())
    for path in ("redis", "bridge"):
        assert re.search(rf"{path}: received 100/100 +p50 {NUMBER} ms .* p99 {NUMBER} ms", out), out


def test_metrics_scrape_small_history_rolls_back() -> None:
    out = run_bench("metrics_scrape.py", "--rows", "2000", "--repeat", "2")
    assert "seeded 2000 executions" in out and "rolled back" in out, out
    assert re.search(r"/metrics body: [0-9]+ bytes", out), out
    from execution.models import Execution

    assert not Execution.objects.exists()  # the seeded history was rolled back


def test_masking_bench_prints_every_case() -> None:
    out = run_bench("masking.py")
    assert len(re.findall(rf"mask_(?:text|json) 10 KB, +[0-9]+ values: p50 +{NUMBER} ms", out)) == 6, out


def test_prune_quick_reports_executions_per_second_and_claim_latency() -> None:
    out = run_bench("prune.py", "--quick")
    assert "seeded 5000 finished executions" in out, out
    assert re.search(rf"pruned 5000 executions in {NUMBER}s: {NUMBER} executions/s, {NUMBER} rows/s", out), (
        out
    )
    assert re.search(rf"queue claims during the prune: [0-9]+, p50 {NUMBER} ms, p99 {NUMBER} ms", out), out
    from execution.models import Execution

    assert not Execution.objects.exists()  # the seeded history is gone


def test_soak_quick_loses_nothing_through_kills_and_a_database_restart() -> None:
    # Its own PostgreSQL cluster (restarted mid-drain), two real worker clusters, SIGKILLs.
    out = run_bench("soak.py", "--quick", timeout=900)
    assert re.search(rf"soak: 500 executions .*: 500 finished in {NUMBER} s, drain rate {NUMBER}", out), out
    assert re.search(r"faults: [1-9][0-9]* workers killed .* PostgreSQL restarted once at", out), out
    assert "clusters alive: True" in out, out
    assert "lost 0, rerun 0, non-terminal 0" in out, out
