"""Soak with faults: N executions through two worker clusters, a worker killed every 10 s,
PostgreSQL restarted once; nothing may be lost, run twice or left unfinished.

    .venv/bin/python bench/soak.py [--n 20000] [--kill-every 10] [--workers 2] [--sleep-share 0.1] [--quick]

The soak runs on a PostgreSQL cluster of its own (initdb in a temporary directory from the
embedded server's binaries, loopback TCP, removed at the end), so that it can restart the
server without touching the development or test database: ``manage.py migrate`` prepares
it, then N one-step plans are submitted through the submission service (``execution_submit``,
background: queued), a share of them ``sleep`` steps of 0.2 s (a kill then lands inside a
running step) and the rest ``noop``. Two ``manage.py qcluster`` processes (``--workers``
each, short leases and a 1 s reaper: the settings of ``.env.example``) drain them while

- a killer SIGKILLs a random worker (a leaf of a cluster's process tree, which the cluster
  replaces) every ``--kill-every`` seconds from the start of the drain;
- PostgreSQL is restarted once (``pg_ctl restart -m immediate``: every connection dropped
  and crash recovery run) when 40 % of the executions have finished.

Prints the drain rate (executions/s from the clusters' start to the last one finished) and
the counts that must be 0:

- lost: executions that did not end ``completed`` (failed, timed out, cancelled) or have no
  row;
- rerun: executions whose step or whose execution was recorded completed more than once;
- non-terminal: executions still not finished at the deadline.

``--quick`` (CI): 500 executions, a kill every 5 s. Exits non-zero when a count is not 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "opsconductor.settings"

# Short leases and a fast reaper so a killed worker's execution is back in the queue within
# seconds (public settings of .env.example).
FAST_RECOVERY = {
    "OPS_LEASE_SECONDS": "10",
    "OPS_REAPER_INTERVAL_SECONDS": "1",
    "OPS_RETRY_BACKOFF_BASE_SECONDS": "0.2",
}
SUBMITTERS = 8  # threads submitting
RESTART_AT = 0.4  # share of the executions finished when PostgreSQL is restarted


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnPostgres:
    """A PostgreSQL cluster for the soak alone (the embedded wheel's binaries)."""

    def __init__(self) -> None:
        from opsconductor import embedded_pg

        self.bin = Path(embedded_pg.client_program("initdb")).parent
        self.dir = Path(tempfile.mkdtemp(prefix="opsc-soak-"))
        self.data = self.dir / "data"
        self.port = free_port()
        # PostgreSQL refuses to run as root: as root it runs as the wheel's user.
        self.run_as = "pgserver" if os.geteuid() == 0 else None
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/soak"

    def _run(self, *argv: str) -> None:
        kwargs: dict[str, Any] = {"check": True, "capture_output": True, "text": True, "timeout": 300}
        if self.run_as:
            kwargs["user"] = self.run_as
        subprocess.run([str(self.bin / argv[0]), *argv[1:]], **kwargs)

    def _options(self) -> str:
        port = f"-c listen_addresses=127.0.0.1 -p {self.port}"
        return f"{port} -c unix_socket_directories='' -c max_connections=200"

    def start(self) -> None:
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-N")
        self._run(
            "pg_ctl", "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o", self._options(), "start"
        )
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "soak")

    def _start(self) -> None:
        # -l: the server's output goes to a file (not to our pipes, which would never close)
        self._run(
            "pg_ctl", "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o", self._options(), "start"
        )

    def restart(self) -> float:
        """Crash and restart the server (every connection dropped, recovery run); seconds down."""
        began = time.monotonic()
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
        self._start()
        return time.monotonic() - began

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def leaves(pid: int) -> list[Any]:
    """Processes of a cluster's tree that have no children of their own (its workers)."""
    import psutil

    try:
        tree = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for p in tree:
        # A process may end between the listing and this look (a cluster starting or
        # replacing a worker): it is no candidate, and the killer goes on.
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            if p.is_running() and not p.children():
                found.append(p)
    return found


class Killer(threading.Thread):
    """SIGKILLs a random worker of a random cluster every ``every`` seconds until stopped."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], *, every: float) -> None:
        super().__init__(daemon=True)
        self.procs, self.every = procs, every
        self.killed: list[int] = []
        self.stop = threading.Event()
        self.rng = random.Random(24)

    def run(self) -> None:
        import psutil

        # The first kill early (a short run sees some), then one every ``every`` seconds.
        wait = min(1.0, self.every)
        while not self.stop.wait(wait):
            wait = self.every
            candidates = leaves(self.rng.choice(self.procs).pid)
            if candidates:
                victim = self.rng.choice(candidates)
                with contextlib.suppress(psutil.NoSuchProcess):
                    victim.send_signal(signal.SIGKILL)
                    self.killed.append(victim.pid)


def start_clusters(count: int, env: dict[str, str], log_dir: str) -> list[subprocess.Popen[bytes]]:
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(ROOT / "manage.py"), "qcluster"]
    procs = []
    for i in range(count):
        out: Any = open(Path(log_dir) / f"cluster-{i}.log", "ab") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=out, start_new_session=True))
    return procs


def stop_clusters(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the cluster left behind


def submit_all(n: int, sleep_share: float) -> None:
    from django.contrib.auth import get_user_model

    from execution.enums import Role
    from execution.models import Membership, Tenant
    from execution.services.submit import execution_submit

    tenant, _ = Tenant.objects.get_or_create(slug="soak", defaults={"name": "soak"})
    actor, _ = get_user_model().objects.get_or_create(username="soak")
    Membership.objects.get_or_create(tenant=tenant, user=actor, defaults={"role": Role.OPERATOR})
    every = round(1 / sleep_share) if sleep_share > 0 else 0

    def submit_range(start: int) -> None:
        from django.db import connection

        try:
            for i in range(start, n, SUBMITTERS):
                sleeping = every and i % every == 0
                step = (
                    {"name": "s", "type": "sleep", "params": {"seconds": 0.2}}
                    if sleeping
                    else {"name": "n", "type": "noop"}
                )
                plan = {"name": f"soak {i}", "environment": "dev", "steps": [step]}
                execution_submit(tenant=tenant, actor=actor, plan=plan, sla_class="medium")  # background
        finally:
            connection.close()

    # Several threads: a submission mostly waits for PostgreSQL, so they overlap.
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        for future in [pool.submit(submit_range, start) for start in range(SUBMITTERS)]:
            future.result()


def finished_count() -> int:
    from django.db import connection

    from execution.enums import FINISHED_STATUSES

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM executions WHERE status = ANY(%s::execution_status[])",
            [list(FINISHED_STATUSES)],
        )
        return int(cursor.fetchone()[0])


def wait_finished(n: int, deadline: float, procs: list[subprocess.Popen[bytes]]) -> int:
    """Polls until every execution finished or the deadline; survives the restart."""
    from django.db import InterfaceError, OperationalError, connection

    done = 0
    while time.monotonic() < deadline:
        try:
            done = finished_count()
        except (OperationalError, InterfaceError):
            connection.close()  # the restart dropped it; the next round connects again
            time.sleep(0.5)
            continue
        if done >= n:
            return done
        if not all(p.poll() is None for p in procs):
            raise SystemExit("soak: a cluster died")
        time.sleep(0.25)
    return done


def counts(n: int) -> dict[str, int]:
    from django.db import connection

    from execution.enums import FINISHED_STATUSES

    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM executions GROUP BY status")
        statuses = Counter(dict(cursor.fetchall()))
        cursor.execute(
            """SELECT count(*) FROM (SELECT execution_id FROM execution_events
                 WHERE event_type IN ('step_completed', 'completed')
                 GROUP BY execution_id, event_type, step_index HAVING count(*) > 1) twice"""
        )
        rerun = int(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM execution_queue WHERE attempt_count > 1")
        retried = int(cursor.fetchone()[0])
    non_terminal = sum(c for s, c in statuses.items() if s not in FINISHED_STATUSES)
    completed = statuses.get("completed", 0)
    return {
        "lost": n - completed - non_terminal,
        "rerun": rerun,
        "non_terminal": non_terminal,
        "retried": retried,
        **{f"status {s}": c for s, c in sorted(statuses.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--kill-every", type=float, default=10.0, help="seconds between worker kills")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per cluster")
    parser.add_argument("--sleep-share", type=float, default=0.1, help="share of 0.2 s sleep steps")
    parser.add_argument("--log-dir", default="", help="write each cluster's output to a file here")
    parser.add_argument("--quick", action="store_true", help="500 executions, a kill every 5 s (CI)")
    args = parser.parse_args()
    n, every = (500, 5.0) if args.quick else (args.n, args.kill_every)

    server = OwnPostgres()
    server.start()
    os.environ["DATABASE_URL"] = server.url
    os.environ.setdefault("DEBUG", "false")
    env = dict(os.environ, OPS_WORKERS=str(args.workers), PYTHONUNBUFFERED="1", **FAST_RECOVERY)
    procs: list[subprocess.Popen[bytes]] = []
    killer: Killer | None = None
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, check=True, timeout=600
        )
        import django

        django.setup()
        began = time.monotonic()
        submit_all(n, args.sleep_share)
        submitted = time.monotonic() - began
        print(
            f"submitted {n} executions through execution_submit ({SUBMITTERS} threads) "
            f"in {submitted:.1f} s ({n / submitted:.1f}/s)"
        )

        from django.db import connection

        connection.close()
        procs = start_clusters(2, env, args.log_dir)
        started = time.monotonic()
        killer = Killer(procs, every=every)
        killer.start()
        deadline = started + 300 + n * 0.1
        wait_finished(int(n * RESTART_AT), deadline, procs)
        down = server.restart()
        restarted_at = time.monotonic() - started
        done = wait_finished(n, deadline, procs)
        elapsed = time.monotonic() - started
        killer.stop.set()
        killer.join(30)
        alive = all(p.poll() is None for p in procs)
        result = counts(n)
    finally:
        if killer is not None:
            killer.stop.set()
        stop_clusters(procs)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        server.stop()
    print(
        f"soak: {n} executions ({args.sleep_share:.0%} sleep 0.2 s, the rest noop) through 2 clusters of "
        f"{args.workers} workers: {done} finished in {elapsed:.1f} s, "
        f"drain rate {done / elapsed:.1f} executions/s"
    )
    print(
        f"faults: {len(killer.killed) if killer else 0} workers killed (one every {every:g} s); PostgreSQL "
        f"restarted once at {restarted_at:.1f} s (-m immediate, {down:.1f} s down); clusters alive: {alive}"
    )
    print(
        f"lost {result['lost']}, rerun {result['rerun']}, non-terminal {result['non_terminal']} "
        f"(all must be 0); retried after a fault: {result['retried']}"
    )
    print("statuses: " + ", ".join(f"{k[7:]} {v}" for k, v in result.items() if k.startswith("status ")))
    if result["lost"] or result["rerun"] or result["non_terminal"] or not alive:
        raise SystemExit("soak: executions were lost, run twice or left unfinished")


if __name__ == "__main__":
    main()
