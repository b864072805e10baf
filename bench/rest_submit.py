"""REST submissions per second through one daphne web process, with workers draining.

    .venv/bin/python bench/rest_submit.py [--n 2000] [--clients 8] [--workers 2] [--web 1] [--quick]

Starts ``--web`` daphne web processes (each on its own port; client i talks to process
i mod N, as a load balancer would spread them) and one ``manage.py qcluster``
(``--workers`` processes) on the same database, then ``--clients`` threads POST ``--n``
one-step ``noop`` plans (level 0, background: each answered 202 and queued) with a token,
as the pipeline does. Prints
submissions/s (first request to last answer), the answer latency p50/p99, and how many of
the submitted executions the workers finished by the time the last answer came and in
all (the drain is waited for, with a deadline), and the web processes' CPU time per
submission and per ``/healthz`` (/proc): on a shared machine the rate falls with the load,
the CPU time per request much less; one core over it is a process's ceiling. The baseline
in the same run is a GET of ``/healthz`` (the web processes' request ceiling without any
database work). Web and workers run as in production (``DEBUG`` off unless set).

Uses DATABASE_URL or the embedded PostgreSQL; the rows it creates are deleted at the end.
Exits non-zero when a submission is refused or an execution does not complete.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")


ASGI_APP = "opsconductor.asgi:application"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"bench: daphne did not listen on {port}")


def start(argv: list[str], workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, OPS_WORKERS=str(workers))
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def setup() -> tuple[str, Any]:
    from django.contrib.auth import get_user_model

    from execution.enums import Role
    from execution.models import Membership, Tenant
    from execution.services.tokens import api_token_issue

    tenant, _ = Tenant.objects.get_or_create(slug="bench-rest", defaults={"name": "bench-rest"})
    user, _ = get_user_model().objects.get_or_create(username="bench-rest")
    Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.OPERATOR})
    return api_token_issue(user=user, tenant=tenant, name="bench-rest", replace=True).key, tenant


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes (Linux /proc)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def hammer(bases: list[str], n: int, clients: int, send: Any) -> tuple[float, list[float], list[str]]:
    """``n`` requests from ``clients`` threads; returns (elapsed, latencies, errors)."""
    import requests

    counter = iter(range(n))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def client(base: str) -> None:
        session = requests.Session()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            began = time.monotonic()
            error = send(session, base, i)
            with lock:
                latencies.append(time.monotonic() - began)
                if error:
                    errors.append(error)

    threads = [threading.Thread(target=client, args=(bases[i % len(bases)],)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started, latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--web", type=int, default=1, help="daphne web processes")
    parser.add_argument("--quick", action="store_true", help="100 submissions (for CI)")
    args = parser.parse_args()
    n = 100 if args.quick else args.n

    import django

    django.setup()
    from execution.enums import FINISHED_STATUSES
    from execution.models import Execution

    token, tenant = setup()
    run_id = os.urandom(4).hex()
    os.environ.setdefault("DEBUG", "false")  # for the children: measure what production runs
    ports = [free_port() for _ in range(args.web)]
    webs = [
        start([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(p), ASGI_APP], 1) for p in ports
    ]
    cluster = start([sys.executable, str(ROOT / "manage.py"), "qcluster"], args.workers)
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    headers = {"Authorization": f"Token {token}"}

    def submit(session: Any, url: str, i: int) -> str:
        body = {
            "tenant": tenant.slug,
            "plan": {
                "name": f"bench {run_id} {i}",
                "environment": "dev",
                "estimated_duration_seconds": 20,  # medium: background, answered 202
                "steps": [{"name": "noop", "type": "noop"}],
            },
        }
        answer = session.post(f"{url}/api/v1/executions/", json=body, headers=headers, timeout=60)
        return "" if answer.status_code == 202 else f"{answer.status_code}: {answer.text[:200]}"

    def health(session: Any, url: str, i: int) -> str:
        answer = session.get(f"{url}/healthz", timeout=60)
        return "" if answer.status_code == 200 else f"{answer.status_code}"

    mine = Execution.objects.filter(tenant=tenant, plan_snapshot__name__startswith=f"bench {run_id} ")
    try:
        for p in ports:
            wait_port(p)
        time.sleep(2.0)  # let the cluster's workers fork
        web_pids = [web.pid for web in webs]
        cpu0 = cpu_seconds(web_pids)
        base_elapsed, _, _ = hammer(bases, n, args.clients, health)
        cpu1 = cpu_seconds(web_pids)
        began = time.monotonic()
        elapsed, latencies, errors = hammer(bases, n, args.clients, submit)
        cpu2 = cpu_seconds(web_pids)
        if errors:
            raise SystemExit(f"bench: {len(errors)} submissions refused, e.g. {errors[0]}")
        drained_at_end = mine.filter(status__in=FINISHED_STATUSES).count()
        deadline = time.monotonic() + max(120.0, n / 5)
        while mine.exclude(status__in=FINISHED_STATUSES).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        drain_elapsed = time.monotonic() - began  # first request -> last execution finished
        completed = mine.filter(status="completed").count()
    finally:
        for web in webs:
            stop(web)
        stop(cluster)
    ms = [v * 1000 for v in latencies]
    print(
        f"REST submissions: {n} from {args.clients} clients to {args.web} web process(es): "
        f"{n / elapsed:.1f} submissions/s (goal >= 100)"
    )
    print(f"answer latency: p50 {percentile(ms, 0.5):.0f} ms, p99 {percentile(ms, 0.99):.0f} ms")
    print(f"drained while submitting: {drained_at_end}/{n}; completed in all: {completed}/{n}")
    print(
        f"drain rate: {completed / drain_elapsed:.1f} executions/s (first request -> last execution "
        f"finished; keeps up when it is close to the submission rate)"
    )
    print(f"baseline, GET /healthz on the same web process(es): {n / base_elapsed:.1f} requests/s")
    # A web process is one Python interpreter: its ceiling is one core over its CPU time per
    # request, whatever else the machine runs (the rates above fall with the machine's load).
    submit_ms, health_ms = (cpu2 - cpu1) * 1000 / n, (cpu1 - cpu0) * 1000 / n
    print(
        f"web process CPU per request: submission {submit_ms:.2f} ms, /healthz {health_ms:.2f} ms; "
        f"one free core serves {1000 / max(submit_ms, 0.01):.0f} submissions/s per process"
    )
    from execution.services.trail import trail_delete_allowed

    with trail_delete_allowed():  # the audit trail's retention escape
        mine.delete()
    if completed != n:
        raise SystemExit(f"bench: only {completed} of {n} executions completed")


if __name__ == "__main__":
    main()
