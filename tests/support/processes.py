"""Helpers for tests that start real processes (workers, daphne, serve) on the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.db import connection

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """A DATABASE_URL for the database this test process is using (the test database)."""
    s = connection.settings_dict
    host = s.get("HOST") or ""
    user = s.get("USER") or "postgres"
    password = s.get("PASSWORD") or ""
    port = s.get("PORT") or "5432"
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return f"postgres://{auth}@{quote(host, safe='')}:{port}/{s['NAME']}"


def pg_dump_data() -> str:
    """``pg_dump --data-only`` of the test database, with the wheel's pg_dump (matches the server)."""
    from opsconductor import embedded_pg

    dump = subprocess.run(
        [embedded_pg.client_program("pg_dump"), "--data-only", test_database_url()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dump.returncode == 0, dump.stderr[-500:]
    return dump.stdout


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that must see the same (test) database."""
    env = dict(os.environ)
    env["DATABASE_URL"] = test_database_url()
    env["DJANGO_SETTINGS_MODULE"] = "opsconductor.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTEST_XDIST_WORKER", None)
    env.update(extra)
    return env


def manage_argv(*args: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "manage.py"), *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
