"""``manage.py secret set <path> --tenant T`` (value from stdin, never echoed) and
``manage.py secret list --tenant T`` (paths only) for the db backend
(docs/contract.md#secrets-and-masking)."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution.models import Tenant
from execution.secrets.references import SecretError
from execution.secrets.store import secret_delete, secret_paths, secret_set


class Command(BaseCommand):
    help = "Manage secrets of the db backend: set (value from stdin), list (paths only), delete."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        set_parser = sub.add_parser("set", help="set a secret; the value is read from standard input")
        set_parser.add_argument("path", help="e.g. acme/deploy-token or db:acme/deploy-token")
        set_parser.add_argument("--tenant", required=True)
        set_parser.add_argument("--description", default="")
        list_parser = sub.add_parser("list", help="list secret paths (never values)")
        list_parser.add_argument("--tenant", required=True)
        delete_parser = sub.add_parser("delete", help="delete a secret")
        delete_parser.add_argument("path")
        delete_parser.add_argument("--tenant", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"unknown tenant {options['tenant']!r}")
        action = options["action"]
        if action == "list":
            for path in secret_paths(tenant=tenant):
                self.stdout.write(f"db:{path}")
            return
        if action == "delete":
            if not secret_delete(tenant=tenant, path=options["path"]):
                raise CommandError(f"no secret {options['path']!r} in tenant {tenant.slug!r}")
            self.stdout.write(f"deleted db:{options['path'].removeprefix('db:')}")
            return
        value = self._read_value()
        try:
            entry = secret_set(
                tenant=tenant, path=options["path"], value=value, description=options["description"]
            )
        except SecretError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"stored db:{entry.path} for tenant {tenant.slug} (value not shown)")

    def _read_value(self) -> str:
        # A terminal gets a no-echo prompt; a pipe is read whole (one trailing newline dropped).
        if sys.stdin.isatty():
            return getpass.getpass("secret value (not echoed): ")
        data = sys.stdin.read()
        return data[:-1] if data.endswith("\n") else data
