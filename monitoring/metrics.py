"""The Prometheus collector behind /metrics: every figure is read from PostgreSQL per scrape.

Workers and web processes are many; the database is one. Reading the figures at scrape
time (instead of counting in process memory) makes any web process answer the same numbers,
so there is no multi-process mode to configure and nothing is lost when a worker dies.
Counters and histograms come from the rollups the database keeps as work finishes
(monitoring/selectors/rollups.py), gauges of the current state from partial indexes: no
statement reads the history, and pruning it takes nothing off a counter.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from monitoring.selectors import figures
from monitoring.selectors.figures import Histogram

PREFIX = "opsconductor"
COMPLIANCE_WINDOW = timedelta(hours=1)


def _histogram(name: str, doc: str, label: str, data: dict[str, Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value, hist in sorted(data.items()):
        buckets = [(repr(le), float(n)) for le, n in hist.buckets] + [("+Inf", float(hist.count))]
        family.add_metric([value], buckets, hist.total)
    return family


class DatabaseCollector(Collector):
    """Yields the docs/contract.md#monitoring figures; one short read-only query per family."""

    def collect(self) -> Iterator[Metric]:
        executions = GaugeMetricFamily(
            f"{PREFIX}_executions",
            "Executions in each unfinished status now, by tenant.",
            labels=["tenant", "status"],
        )
        for (tenant, status), count in sorted(figures.executions_current().items()):
            executions.add_metric([tenant, status], count)
        yield executions

        finished = CounterMetricFamily(
            f"{PREFIX}_executions_finished",
            "Executions that entered each finished status, by tenant (pruning takes nothing off).",
            labels=["tenant", "status"],
        )
        for (tenant, status), count in sorted(figures.executions_finished().items()):
            finished.add_metric([tenant, status], count)
        yield finished

        yield _histogram(
            f"{PREFIX}_execution_duration_seconds",
            "Run time of ended executions (from the start of the attempt that ended it), by SLA class.",
            "sla_class",
            figures.execution_duration_histograms(),
        )
        yield _histogram(
            f"{PREFIX}_step_duration_seconds",
            "Duration of finished steps, by step type.",
            "step_type",
            figures.step_duration_histograms(),
        )

        queue = figures.queue_by_sla_class()
        depth = GaugeMetricFamily(
            f"{PREFIX}_queue_depth", "Queue items by SLA class and state.", labels=["sla_class", "state"]
        )
        oldest = GaugeMetricFamily(
            f"{PREFIX}_queue_oldest_pending_age_seconds",
            "Seconds the oldest claimable pending item has waited for a worker, by SLA class (0 when none).",
            labels=["sla_class"],
        )
        for sla_class, row in queue.items():
            depth.add_metric([sla_class, "pending"], row["pending"])
            depth.add_metric([sla_class, "processing"], row["processing"])
            oldest.add_metric([sla_class], row["oldest_age_seconds"])
        yield depth
        yield oldest

        dlq = GaugeMetricFamily(
            f"{PREFIX}_dlq_size", "Open dead letters (not requeued, not archived).", labels=["sla_class"]
        )
        for sla_class, count in figures.dlq_size_by_sla_class().items():
            dlq.add_metric([sla_class], count)
        yield dlq

        scalars = figures.scalar_counts()
        yield GaugeMetricFamily(
            f"{PREFIX}_active_locks", "Asset locks currently held.", value=scalars["active_locks"]
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_approvals_pending",
            "Approvals waiting for votes, before a run and at gate steps.",
            value=scalars["approvals_pending"],
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_workers_alive",
            "Worker clusters with a fresh heartbeat (each cluster runs several worker processes).",
            value=scalars["workers_alive"],
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_cluster_stall_recoveries",
            "Times a cluster found its task queue left locked by a killed worker and moved to a new "
            "queue (summed over the clusters' heartbeat rows).",
            value=scalars["stall_recoveries"],
        )

        compliance = figures.sla_compliance(window=COMPLIANCE_WINDOW)
        ratio = GaugeMetricFamily(
            f"{PREFIX}_sla_compliance_ratio",
            "Share of executions that ran and ended in the last hour that met their SLA (absent: none).",
            labels=["sla_class"],
        )
        ended = GaugeMetricFamily(
            f"{PREFIX}_sla_executions_ended", "Executions ended in the last hour.", labels=["sla_class"]
        )
        for sla_class, figures_row in compliance.items():
            ended.add_metric([sla_class], float(figures_row["ended"] or 0))
            if figures_row["ratio"] is not None:
                ratio.add_metric([sla_class], float(figures_row["ratio"]))
        yield ratio
        yield ended

        violations = CounterMetricFamily(
            f"{PREFIX}_sla_violations", "SLA alerts raised, by kind.", labels=["kind"]
        )
        for kind, count in figures.sla_alert_counts().items():
            violations.add_metric([kind], count)
        yield violations


def metrics_render() -> bytes:
    """The Prometheus text exposition of the collector (a fresh registry per scrape)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return generate_latest(registry)
