"""django-q2's sentinel with one more guard: a task queue left locked by a killed worker.

django-q2's worker processes take their tasks from one ``multiprocessing.Queue``. An idle
worker waits inside ``Queue.get()`` holding the queue's reader lock (a semaphore shared by
the processes) while it blocks on the pipe. SIGKILLed there (an operator's ``kill -9``, the
kernel's OOM killer), it never releases the lock: the sentinel spawns a new worker, but that
one and every other worker then wait for the lock for ever, and the cluster takes no task
again while its processes and heartbeats look alive.

After the sentinel replaced a dead worker, :class:`Sentinel` looks at the lock: held, while
no live worker is blocked reading the queue's pipe (the only live holder that can wait there)
over a few looks, it is orphaned. The cluster then moves to a new task queue: the pusher is
restarted on it and every worker of the old queue gets SIGTERM (an idle one exits at once, a
busy one finishes or hands its execution back within ``OPS_SHUTDOWN_GRACE_SECONDS``, as on any
SIGTERM: docs/engine.md "SIGTERM"); the sentinel's guard replaces them on the new queue. Tasks
that were in the old queue are lost to it; django-q2's broker delivers them again after its
``retry`` (the drain tasks are wake-ups: the cluster's loop queues new ones at its next tick).
The recovery is counted on the cluster's heartbeat row (``stall_recoveries``), which the
monitoring page and ``/metrics`` show (docs/operations.md).

Which process is blocked reading which pipe is read from ``/proc/<pid>/syscall`` (Linux; the
number of ``read`` is per architecture): elsewhere the guard does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import signal
import socket
import time
from multiprocessing import Queue
from pathlib import Path
from typing import Any

from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone
from django_q.cluster import Cluster as DjangoQCluster
from django_q.cluster import Sentinel as DjangoQSentinel
from django_q.conf import Conf

from execution.models import WorkerHeartbeat
from execution.models.workers import CLUSTER_PREFIX

logger = logging.getLogger(__name__)

READ_SYSCALL = {"x86_64": 0, "aarch64": 63}.get(platform.machine())
LOOKS = 5  # looks at the lock, LOOK_SECONDS apart, before it is called orphaned
LOOK_SECONDS = 0.2


def blocked_reading(pid: int, fd: int) -> bool:
    """The process is blocked in read(2) on ``fd`` (``/proc/<pid>/syscall``)."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
        return int(fields[0]) == READ_SYSCALL and int(fields[1], 16) == fd
    except (OSError, ValueError, IndexError):
        return False


class Sentinel(DjangoQSentinel):
    """django-q2's sentinel that also frees the cluster from an orphaned reader lock."""

    task_queue: Any  # a multiprocessing.Queue (django-q2 is untyped): its lock and pipe are read

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.retired: set[int] = set()  # workers of an abandoned queue we stopped ourselves
        super().__init__(*args, **kwargs)

    def reincarnate(self, process: Any) -> None:
        worker = process is not self.monitor and process is not self.pusher
        super().reincarnate(process)
        if not worker or process.pid in self.retired:
            self.retired.discard(process.pid)
            return
        if READ_SYSCALL is not None and self.reader_lock_orphaned():
            self.move_to_new_queue()

    def reader_lock_orphaned(self) -> bool:
        """The task queue's reader lock is held and no live worker waits on the pipe, at
        every one of LOOKS looks (a worker between taking the lock and reading is a moment)."""
        lock, fd = self.task_queue._rlock, self.task_queue._reader.fileno()
        for look in range(LOOKS):
            if look:
                time.sleep(LOOK_SECONDS)
            if lock.acquire(False):
                lock.release()
                return False
            if any(p.is_alive() and blocked_reading(p.pid, fd) for p in self.pool):
                return False
        return True

    def move_to_new_queue(self) -> None:
        logger.critical("task queue reader lock left held by a killed worker: moving to a new queue")
        old = self.task_queue
        self.task_queue = Queue(maxsize=Conf.QUEUE_LIMIT) if Conf.QUEUE_LIMIT else Queue()
        for process in list(self.pool):
            self.retired.add(process.pid)
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(process.pid, signal.SIGTERM)
        pusher = self.pusher
        pusher.terminate()
        pusher.join(5)
        super().reincarnate(pusher)  # on the new queue
        old.cancel_join_thread()
        old.close()
        stall_recovery_record(cluster_pid=self.parent_pid)


def stall_recovery_record(*, cluster_pid: int) -> None:
    """Count the recovery on the cluster's heartbeat row (its main process: ``cluster_pid``)."""
    try:
        WorkerHeartbeat.objects.filter(
            worker_id=f"{CLUSTER_PREFIX}{socket.gethostname()}:{cluster_pid}"
        ).update(stall_recoveries=F("stall_recoveries") + 1, last_stall_recovery_at=timezone.now())
    except Exception:
        logger.exception("could not record the stall recovery")
    finally:
        close_old_connections()


class Cluster(DjangoQCluster):
    """django-q2's cluster whose sentinel is :class:`Sentinel`."""

    def start(self) -> int:
        import django_q.cluster

        # Cluster.start() spawns the module's ``Sentinel``; the class is django-q2's public
        # extension point only through this name.
        django_q.cluster.Sentinel = Sentinel  # type: ignore[misc]
        return int(super().start())
