"""A real PgBouncer (Debian's package, installed when missing) in front of the test database.

Transaction pooling: each transaction of a client may run on another server session, which
is what ``OPS_DB_PREPARE=false`` is for (docs/engine.md). PgBouncer refuses to run as root;
as root it runs as the embedded server does (user ``pgserver``, group root: see
opsconductor/embedded_pg.py), the one identity that reaches the server's socket directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

from tests.support.debian import debian_program
from tests.support.processes import free_port, stop_process, wait_for_port


@dataclass(frozen=True)
class Bouncer:
    port: int
    database: str
    user: str
    log: Path

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def admin(self, command: str) -> str:
        """A command of PgBouncer's admin console (``SHOW POOLS`` ...), as psql prints it."""
        from opsconductor import embedded_pg

        out = subprocess.run(
            [
                embedded_pg.client_program("psql"),
                "-AtX",
                "-c",
                command,
                self.url.rsplit("/", 1)[0] + "/pgbouncer",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout


@contextmanager
def pgbouncer(*, pool_size: int = 4) -> Iterator[Bouncer]:
    """PgBouncer on a loopback port, transaction pooling, ``pool_size`` server sessions."""
    program = debian_program("pgbouncer", "pgbouncer", why="the PgBouncer test")
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    port = free_port()
    # Readable by the user PgBouncer switches to (a pytest tmp_path is root's alone).
    work = Path(tempfile.mkdtemp(prefix="opsc-pgbouncer-"))
    work.chmod(0o755)
    server = f"host={settings.get('HOST') or '127.0.0.1'} port={settings.get('PORT') or 5432}"
    config = work / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = {server} user={user}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = any\n"
        f"admin_users = {user}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        "server_reset_query =\n"
    )
    config.chmod(0o644)
    argv = [program, str(config)]
    if os.geteuid() == 0:
        argv = ["setpriv", "--reuid=pgserver", "--regid=0", "--clear-groups", *argv]
    log = work / "pgbouncer.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30)
        yield Bouncer(port=port, database=str(settings["NAME"]), user=user, log=log)
    finally:
        stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)
