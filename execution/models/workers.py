"""``worker_heartbeats``: one row per worker cluster (``cluster:host:pid``, written by its main
process every few seconds, idle or not) and one per worker process that ran an execution
(``host:pid``: its current execution; kept fresh by its cluster while the process lives).
Alive or lost is decided in one place: :func:`execution.selectors.worker_state`."""

from __future__ import annotations

from django.db import models

CLUSTER_PREFIX = "cluster:"  # the worker_id of a cluster's own row


class WorkerHeartbeat(models.Model):
    worker_id = models.CharField(max_length=200, unique=True)
    cluster_name = models.CharField(max_length=200, blank=True, default="")
    hostname = models.CharField(max_length=255, blank=True, default="")
    pid = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # The execution the worker runs now, if any (a uuid string; no FK, it is advisory).
    current_execution_id = models.UUIDField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # A cluster's row: how often its sentinel found the task queue's reader lock left held by
    # a killed worker and moved the cluster to a new queue (execution/worker/sentinel.py).
    stall_recoveries = models.IntegerField(default=0, db_default=0)  # raw INSERTs (beats.py) leave it out
    last_stall_recovery_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "worker_heartbeats"
        ordering = ["-last_seen_at"]
        indexes = [models.Index(fields=["last_seen_at"], name="workers_last_seen")]

    def __str__(self) -> str:
        return self.worker_id
