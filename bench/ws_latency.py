"""Commit-to-client latency of live progress over both delivery paths (docs/contract.md#live-progress).

For each path -- channels_redis (REDIS_URL) and the PostgreSQL LISTEN/NOTIFY bridge -- this
starts a daphne server, connects a WebSocket client to one execution's stream, and runs a
separate producer process that commits N events (one transaction each, paced). The
producer stamps each event right after its commit; the client stamps it on receipt;
the script prints p50/p95/p99/max of the difference.

    DATABASE_URL=postgres://... .venv/bin/python bench/ws_latency.py          # 1,000 events
    DATABASE_URL=postgres://... .venv/bin/python bench/ws_latency.py --quick  # 100 events

The database is migrated first; a tenant ``bench-ws`` with a user and a token is created.
Without DATABASE_URL the embedded PostgreSQL is used. The Redis run uses ``--redis-url`` (default:
REDIS_URL); without either it is skipped and says so (``--paths bridge`` skips it too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")
    import django

    django.setup()


def produce(execution_pk: int, count: int, rate: float) -> None:
    """Child process: commit ``count`` events, print "<id> <commit time>" per event."""
    _django()
    from django.db import transaction

    from execution.models import Execution
    from execution.services.events import event_record

    execution = Execution.objects.get(pk=execution_pk)
    interval = 1.0 / rate
    next_at = time.monotonic()
    stamps: list[tuple[int, float]] = []
    for i in range(count):
        stamp: dict[str, float] = {}
        with transaction.atomic():
            # Registered before event_record's publisher: runs first, right after COMMIT.
            transaction.on_commit(lambda s=stamp: s.__setitem__("t", time.time()))  # type: ignore[misc]
            event = event_record(execution=execution, event_type="bench", details={"n": i})
        stamps.append((event.pk, stamp["t"]))
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    for pk, t in stamps:
        print(pk, repr(t))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"daphne did not listen on {port}")


def _setup() -> tuple[int, str, str, int]:
    _django()
    from django.core.management import call_command

    from execution.enums import ExecutionMode, Role, SlaClass
    from execution.models import Execution, Membership, Tenant
    from execution.realtime.reader import stream_head
    from execution.services.tokens import api_token_issue

    call_command("migrate", interactive=False, verbosity=0)
    from django.contrib.auth import get_user_model

    tenant, _ = Tenant.objects.get_or_create(slug="bench-ws", defaults={"name": "ws latency bench"})
    user, _ = get_user_model().objects.get_or_create(username="bench-ws-viewer")
    Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.VIEWER})
    token = api_token_issue(user=user, tenant=tenant, name="bench-ws", replace=True).key
    execution = Execution.objects.create(
        tenant=tenant,
        actor=user,
        idempotency_key=os.urandom(32).hex(),
        plan_snapshot={"name": "ws latency bench", "steps": []},
        execution_mode=ExecutionMode.BACKGROUND,
        sla_class=SlaClass.FAST,
    )
    return (
        execution.pk,
        str(execution.execution_id),
        token,
        stream_head(execution_id=execution.execution_id),
    )


async def _client(url: str, count: int, ready: asyncio.Event, timeout: float) -> dict[int, float]:
    from websockets.asyncio.client import connect

    received: dict[int, float] = {}
    async with connect(url, open_timeout=30) as ws:
        ready.set()
        deadline = time.monotonic() + timeout
        while len(received) < count and time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            now = time.time()
            message = json.loads(raw)
            if message.get("type") == "bench":
                received[int(message["id"])] = now
    return received


def run_path(path: str, count: int, rate: float, redis_url: str) -> dict[str, Any]:
    execution_pk, execution_id, token, after = _setup()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("REDIS_URL", None)
    if path == "redis":
        env["REDIS_URL"] = redis_url
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "daphne.log"
        with log.open("wb") as out:
            daphne = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "opsconductor.asgi:application",
                ],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_port(port)
            url = f"ws://127.0.0.1:{port}/ws/executions/{execution_id}/?token={token}&after={after}"

            async def main() -> tuple[dict[int, float], str]:
                ready = asyncio.Event()
                client = asyncio.ensure_future(_client(url, count, ready, timeout=count / rate + 60))
                await asyncio.wait_for(ready.wait(), 60)
                await asyncio.sleep(1.0)  # the consumer has joined its groups and caught up
                producer = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--produce", str(execution_pk), str(count), str(rate),
                    cwd=str(REPO), env=env, stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                stdout, _ = await producer.communicate()
                return await client, stdout.decode()

            received, produced = asyncio.run(main())
        finally:
            daphne.terminate()
            daphne.wait(20)
    commits = {int(a): float(b) for a, b in (line.split() for line in produced.splitlines() if line.strip())}
    latencies = sorted((received[i] - commits[i]) * 1000 for i in commits if i in received)
    if not latencies:
        raise SystemExit(f"{path}: nothing received")
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "path": path,
        "events": len(commits),
        "received": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(q[94], 1),
        "p99_ms": round(q[98], 1),
        "max_ms": round(latencies[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 events per path instead of 1,000")
    parser.add_argument("--events", type=int, help="events per path (default 1000, quick 100)")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="events per second committed by the producer"
    )
    parser.add_argument("--paths", default="redis,bridge", help="comma-separated: redis, bridge")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL"), help="Redis URL (default: REDIS_URL)"
    )
    parser.add_argument(
        "--produce", nargs=3, metavar=("EXECUTION_PK", "COUNT", "RATE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.produce:
        produce(int(args.produce[0]), int(args.produce[1]), float(args.produce[2]))
        return
    count = args.events or (100 if args.quick else 1000)
    os.environ.pop("REDIS_URL", None)  # this process only sets up rows; each path sets its own
    print(f"commit-to-client latency, {count} events per path at {args.rate:g}/s (goal p99 <= 100 ms)")
    for path in [p.strip() for p in args.paths.split(",") if p.strip()]:
        if path == "redis" and not args.redis_url:
            print(" redis: skipped (set REDIS_URL or --redis-url)", flush=True)
            continue
        r = run_path(path, count, args.rate, args.redis_url)
        print(
            f"{r['path']:>6}: received {r['received']}/{r['events']}  p50 {r['p50_ms']} ms  "
            f"p95 {r['p95_ms']} ms  p99 {r['p99_ms']} ms  max {r['max_ms']} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
