"""The embedded PostgreSQL and its traps, each on a throw-away state directory of its own."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.processes import REPO_ROOT, free_port, wait_for_port

pytestmark = pytest.mark.slow


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["OPS_STATE_DIR"] = str(state)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _py(state: Path, code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        env=_env(state),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _stop(state: Path) -> None:
    _py(state, "from opsconductor import embedded_pg; embedded_pg.stop()")


def _postmaster_pid(state: Path) -> int | None:
    pidfile = state / "pgdata" / "postmaster.pid"
    if not pidfile.exists():
        return None
    pid = int(pidfile.read_text().splitlines()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


@pytest.fixture
def state(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "state"
    path.mkdir()
    yield path
    _stop(path)


def test_data_survives_a_restart_and_listens_on_a_unix_socket_only(state: Path) -> None:
    write = _py(
        state,
        """
        from opsconductor import embedded_pg
        import psycopg2
        db = embedded_pg.ensure_running()
        conn = psycopg2.connect(host=db.socket_dir, port=db.port, user=db.user, dbname=db.name)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE TABLE keep (v text)")
        cur.execute("INSERT INTO keep VALUES ('still here')")
        cur.execute("SHOW listen_addresses")
        print("LISTEN=" + repr(cur.fetchone()[0]))
        print("SOCKET=" + db.socket_dir)
        """,
    )
    assert write.returncode == 0, write.stderr
    assert "LISTEN=''" in write.stdout, "no TCP listener"
    assert f"SOCKET={state}" in write.stdout or "SOCKET=/" in write.stdout
    assert (state / "pgdata" / "PG_VERSION").exists(), "data lives in the dedicated state directory"
    _stop(state)
    assert _postmaster_pid(state) is None
    read = _py(
        state,
        """
        from opsconductor import embedded_pg
        import psycopg2
        db = embedded_pg.ensure_running()
        conn = psycopg2.connect(host=db.socket_dir, port=db.port, user=db.user, dbname=db.name)
        cur = conn.cursor()
        cur.execute("SELECT v FROM keep")
        print(cur.fetchone()[0])
        """,
    )
    assert read.returncode == 0, read.stderr
    assert "still here" in read.stdout


def test_sigkill_of_the_owner_leaves_a_server_that_the_next_start_reuses_and_stop_stops(state: Path) -> None:
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from opsconductor import embedded_pg; embedded_pg.ensure_running(); "
            "import time; print('up', flush=True); time.sleep(600)",
        ],
        cwd=REPO_ROOT,
        env=_env(state),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    assert owner.stdout.readline().strip() == "up"
    postmaster = _postmaster_pid(state)
    assert postmaster is not None
    # Simulate the package's trap: a dead pid left in its handle file.
    handle = state / "pgdata" / ".handle_pids.json"
    handle.write_text(json.dumps([owner.pid]))
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    assert _postmaster_pid(state) == postmaster, "the postmaster outlives a SIGKILLed owner"

    again = _py(
        state, "from opsconductor import embedded_pg; print(embedded_pg.ensure_running().postmaster_pid)"
    )
    assert again.returncode == 0, again.stderr
    assert int(again.stdout.strip().splitlines()[-1]) == postmaster
    assert owner.pid not in json.loads(handle.read_text() or "[]"), "stale pid cleaned at start"

    stopped = subprocess.run(
        [sys.executable, "manage.py", "embedded_pg", "stop"],
        cwd=REPO_ROOT,
        env=_env(state),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    time.sleep(0.2)
    assert _postmaster_pid(state) is None


def test_clean_stale_handles_drops_only_dead_pids(tmp_path: Path) -> None:
    from opsconductor import embedded_pg

    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / ".handle_pids.json").write_text(json.dumps([os.getpid(), dead.pid]))
    assert embedded_pg.clean_stale_handles(tmp_path) == [dead.pid]
    assert json.loads((tmp_path / ".handle_pids.json").read_text()) == [os.getpid()]


def _serve(state: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--password", "pw-serve-test"],
        cwd=REPO_ROOT,
        env=_env(state),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _http_status(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback only
        return int(resp.status)


def test_serve_comes_up_stops_everything_on_ctrl_c_and_survives_a_sigkill(state: Path) -> None:
    port = free_port()
    proc = _serve(state, port)
    try:
        wait_for_port(port, timeout=90)
        assert _http_status(f"http://127.0.0.1:{port}/admin/login/") == 200
        postmaster = _postmaster_pid(state)
        assert postmaster is not None
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "pw-serve-test" in out and "http://127.0.0.1" in out
        assert _postmaster_pid(state) is None, "Ctrl-C leaves no PostgreSQL behind"

        killed = _serve(state, port)
        wait_for_port(port, timeout=90)
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        # PR_SET_PDEATHSIG: the children go with serve, so the port frees up.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            import socket

            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) != 0:
                    break
            time.sleep(0.2)
        proc = _serve(state, port)
        wait_for_port(port, timeout=90)
        assert _http_status(f"http://127.0.0.1:{port}/admin/login/") == 200
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
    assert _postmaster_pid(state) is None


def test_state_directory_permissions_are_confined(state: Path) -> None:
    result = _py(state, "from opsconductor import embedded_pg; embedded_pg.ensure_running()")
    assert result.returncode == 0, result.stderr
    mode = (state / "pgdata").stat().st_mode
    assert not mode & stat.S_IWOTH, "the data directory is never world-writable"
    # The package opens the state directory to everyone (chmod o+rx); restrict_state takes it
    # back, so an unprivileged user (LOCAL_RUNNER_USER) reaches neither the socket nor files.
    assert stat.S_IMODE(state.stat().st_mode) & 0o007 == 0, oct(state.stat().st_mode)
    assert stat.S_IMODE((state / "pgdata").stat().st_mode) & 0o077 == 0
