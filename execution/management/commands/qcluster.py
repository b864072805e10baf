"""``manage.py qcluster``: django-q2's cluster plus our cluster heartbeat (replaces django_q's).

While the cluster runs, this process writes its ``worker_heartbeats`` row, runs the reaper
every ``REAPER_INTERVAL_SECONDS``, queues a drain when runnable items wait with nothing
to pick them up (retries whose back-off ended, lost wake-ups) and a notification delivery
task when a delivery's retry is due. SIGTERM/SIGINT stop the
cluster (django-q2 lets each worker finish its current task: a drain ends its current
execution and takes no new one once its budget is spent) and mark the heartbeat stopped.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQCommand

logger = logging.getLogger(__name__)


class Command(DjangoQCommand):
    help = "Start a worker cluster (django-q2) with the OpsConductor heartbeat, reaper and waker."

    def handle(self, *args: Any, **options: Any) -> None:
        from execution.engine.worker import heartbeat_write, runnable_items, worker_id
        from execution.services.limits import limits_waits_record
        from execution.services.reaper import reap_expired
        from execution.tasks import wake_workers
        from monitoring.notifications.tasks import deliveries_wake

        # Operators (and tests) can ask a stuck cluster where it is: kill -USR1 <pid>.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        connections.close_all()  # never share a connection with the forked sentinel
        cluster = Cluster()
        cluster.start()
        me = f"cluster:{worker_id()}"
        name = str(settings.Q_CLUSTER["name"])
        started = timezone.now()
        reap_every = float(getattr(settings, "REAPER_INTERVAL_SECONDS", 15))
        next_reap = 0.0
        next_beat = 0.0
        try:
            while (
                cluster.sentinel is not None
                and cluster.sentinel.is_alive()
                and cluster.stop_event is not None
            ):
                now = time.monotonic()
                try:
                    if now >= next_beat:
                        heartbeat_write(worker=me, cluster_name=name, started_at=started)
                        next_beat = now + 5
                    if now >= next_reap:
                        reap_expired()
                        next_reap = now + reap_every
                    waiting = runnable_items(limit=int(str(settings.Q_CLUSTER["workers"])))
                    if waiting:
                        wake_workers(waiting)
                    deliveries_wake()  # notification retries whose back-off ended
                    limits_waits_record()  # one concurrency_wait event per held-back execution
                except Exception:
                    logger.exception("cluster tick failed")
                    close_old_connections()
                time.sleep(1.0)
        finally:
            try:
                heartbeat_write(worker=me, cluster_name=name, started_at=started, stopped=True)
            except Exception:
                logger.exception("could not mark the cluster heartbeat stopped")
