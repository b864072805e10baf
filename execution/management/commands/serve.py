"""``manage.py serve``: web (daphne) + worker cluster (qcluster) + the SLA watch (``sla_sweep
--watch``) on one machine (docs/contract.md#monitoring, docs/contract.md#scale-out).

Migrates, seeds the demo tenant, prints the URL and logins, and runs until Ctrl-C/SIGTERM;
then stops the workers (they drain), the web server and, when it is in use, the embedded
PostgreSQL.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution.services.demo import demo_seed
from opsconductor import embedded_pg
from opsconductor.listening import Listening, web_listening
from opsconductor.processes import Child, Supervisor, python_argv


class Command(BaseCommand):
    help = "Run the whole product on one machine: migrate, seed the demo, web server and workers."

    def add_arguments(self, parser: CommandParser) -> None:
        listening = web_listening()
        parser.add_argument("--host", default=listening.host, help="default OPS_HOST")
        parser.add_argument("--port", type=int, default=listening.port, help="default OPS_PORT")
        parser.add_argument("--password", help="password of the demo users (default: generated once)")
        parser.add_argument("--no-demo", action="store_true", help="do not seed the demo tenant")
        parser.add_argument("--no-workers", action="store_true", help="web only")

    def handle(self, *args: Any, **options: Any) -> None:
        _port_free(options["host"], options["port"])
        call_command("migrate", interactive=False, verbosity=0)
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        children = [
            Child(
                "web",
                python_argv(
                    "-m",
                    "daphne",
                    "-b",
                    options["host"],
                    "-p",
                    str(options["port"]),
                    "opsconductor.asgi:application",
                ),
            )
        ]
        # The SLA watch runs whether workers run or not: a queue nobody takes is an alert
        # (monitoring/management/commands/sla_sweep.py).
        children.append(Child("sla-watch", python_argv(manage, "sla_sweep", "--watch")))
        if not options["no_workers"]:
            children.append(Child("workers", python_argv(manage, "qcluster")))
        supervisor = Supervisor(children)
        supervisor.install_signal_handlers()
        exit_code = 0
        # The children (the workers above all) learn the address the web server really
        # listens on, --host/--port included (opsconductor/listening.py).
        listening = Listening(host=options["host"], port=options["port"])
        try:
            supervisor.start_all({**os.environ, **listening.environment()})
            self._announce(options)
            dead = supervisor.wait()
            if dead is not None:
                self.stderr.write(f"serve: {dead.name} exited with code {dead.exited()}; stopping")
                exit_code = 1
        finally:
            self.stdout.write("serve: stopping workers and web server ...")
            supervisor.stop_all()
            if settings.EMBEDDED_DATABASE:
                from django.db import connections

                connections.close_all()
                embedded_pg.stop()
                self.stdout.write("serve: embedded PostgreSQL stopped")
        if exit_code:
            raise SystemExit(exit_code)

    def _announce(self, options: dict[str, Any]) -> None:
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"OpsConductor Stage E is up: {url}"))
        self.stdout.write(f"  admin:      {url}admin/")
        if settings.EMBEDDED_DATABASE:
            self.stdout.write(f"  database:   embedded PostgreSQL, data in {embedded_pg.pgdata_dir()}")
        if options["no_demo"]:
            return
        seed = demo_seed(password=options["password"])  # existing passwords are kept
        self.stdout.write("  logins (tenant 'demo'; 'outsider' is in tenant 'other'):")
        for name, info in seed.users.items():
            self.stdout.write(
                f"    {name:<10} password={info['password']}  role={info['role']:<9} token={info['token']}"
            )
        self.stdout.write("  Ctrl-C stops everything.")


def _port_free(host: str, port: int) -> None:
    """Refuse to start when the web server's address is taken (another serve, say): daphne
    would fail after the URL and logins were printed as if the product were up."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CommandError(f"--host {host!r} does not resolve: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise CommandError(
                f"{host}:{port} is not free ({exc.strerror}): another serve? "
                "Choose another with --port or OPS_PORT"
            ) from None
