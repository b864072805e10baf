"""``manage.py embedded_pg start|stop|status``: the embedded PostgreSQL's lifecycle."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from opsconductor import embedded_pg


class Command(BaseCommand):
    help = "Start, stop or show the embedded PostgreSQL server (used when DATABASE_URL is unset)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if not settings.EMBEDDED_DATABASE:
            raise CommandError("DATABASE_URL is set: the embedded PostgreSQL is not in use")
        pgdata = embedded_pg.pgdata_dir()
        if action == "stop":
            stopped = embedded_pg.stop()
            self.stdout.write("stopped" if stopped else "not running")
            return
        if action == "start":
            db = embedded_pg.ensure_running()
            self.stdout.write(f"running pid={db.postmaster_pid} socket={db.socket_dir} data={pgdata}")
            return
        pid = embedded_pg.running_postmaster_pid(pgdata)
        self.stdout.write(f"running pid={pid} data={pgdata}" if pid else f"not running data={pgdata}")
