"""``manage.py qcluster``: django-q2's cluster with the OpsConductor worker runtime.

The runtime (execution/worker/runtime.py) adds wake-ups over LISTEN/NOTIFY, the cluster
heartbeat, the reaper, and a SIGTERM that lets busy workers finish or hand back their
execution before the cluster exits.
"""

from __future__ import annotations

from typing import Any

from django_q.management.commands.qcluster import Command as DjangoQCommand


class Command(DjangoQCommand):
    help = "Start a worker cluster (django-q2) with the OpsConductor worker runtime."

    def handle(self, *args: Any, **options: Any) -> None:
        from execution.worker.runtime import cluster_run

        cluster_run()
