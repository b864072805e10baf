"""Rollups of finished work (docs/operations.md, "How the figures are kept").

Triggers record each event in the transaction that records the work:

- an execution entering a finished status (by UPDATE, or inserted finished): kind
  ``execution`` (label: SLA class, status, its run time), and ``sla_miss`` when it started
  and missed its SLA (``timeout``, ended after ``timeout_at``, or an SLA alert raised);
- a step getting its ``completed_at``: kind ``step`` (label: step type, its duration);
- a queue item leaving ``processing`` (its claim ended: finished, retried, handed back or
  reaped): kind ``queue_wait`` (from when it became claimable to its claim; the claim
  itself is not touched);
- an SLA alert: kind ``sla_alert`` (label: the alert's kind), and ``sla_miss`` for its
  execution when that had already ended counted as having met its SLA.

Each event adds one to rows of ``monitoring_rollup_deltas`` keyed by the database backend
that wrote it (``shard``: two workers never wait for each other's row): its minute (a
log-spaced duration bucket, 16 per doubling from 1 ms) and, for executions, steps and
alerts, all time (the index of the first /metrics histogram bucket that holds the value;
the bounds below are those of monitoring/selectors/figures.py, checked by a test).
``monitoring_rollups_fold()`` (every minute, monitoring/services/rollups.py) moves the
deltas into ``monitoring_rollups``: minute, hour and all-time rows. Readers add the two
tables, so a fold changes no figure. Nothing deletes a count but the trim of minute and hour
rollups no window reads: pruning executions leaves the counters as they are.

``monitoring_rollups_backfill([tenant])`` adds the events of the rows already present to the
rollups in one pass, as a fold would: run here for the history present, and by
bench/metrics_scrape.py after its seed.
"""

from django.db import migrations, models

FINISHED = "'completed', 'failed', 'cancelled', 'timeout', 'partial', 'rejected'"
# monitoring/selectors/figures.py EXECUTION_BUCKETS and STEP_BUCKETS.
RUN_BOUNDS = "'{0.1,0.25,0.5,1,2.5,5,10,30,60,120,300,600,1800}'::double precision[]"
STEP_BOUNDS = "'{0.01,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,120,300}'::double precision[]"

FUNCTIONS = f"""
-- 0 below 1 ms; then bucket i >= 1 holds [2^((i-1)/16), 2^(i/16)) ms.
CREATE FUNCTION monitoring_log_bucket(seconds double precision) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN seconds < 0.001 THEN 0
                ELSE 1 + floor(16 * ln(seconds * 1000) / ln(2))::int END::smallint
$$;

-- How many bounds lie below the value: the index of the first bucket ``le`` that holds it.
CREATE FUNCTION monitoring_le_bucket(seconds double precision, bounds double precision[]) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (width_bucket(seconds, bounds) - (seconds = ANY(bounds))::int)::smallint
$$;

-- Run time of the attempt that ended an execution: from its start, or from the claim of
-- the attempt that ended it when it was retried or requeued (the worker clears
-- attempt_started_at as it closes the item; dequeued_at stays: the last claim).
-- NULL when it never started (or was rejected).
CREATE FUNCTION monitoring_run_seconds(status execution_status, started_at timestamptz,
    completed_at timestamptz, attempt_started_at timestamptz, dequeued_at timestamptz)
RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN status <> 'rejected' AND started_at IS NOT NULL AND completed_at IS NOT NULL
                THEN greatest(0, extract(epoch FROM completed_at
                                         - greatest(started_at, attempt_started_at, dequeued_at)))::float8
           END
$$;

-- docs/operations.md: an execution that ran met its SLA unless it ended ``timeout``, after
-- its timeout_at, or an SLA alert was raised for it.
CREATE FUNCTION monitoring_sla_missed(status execution_status, completed_at timestamptz,
    timeout_at timestamptz, alerted boolean) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT status = 'timeout' OR coalesce(completed_at > timeout_at, false) OR alerted
$$;

CREATE FUNCTION monitoring_step_seconds(duration_ms integer, started_at timestamptz,
    completed_at timestamptz) RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT greatest(0, coalesce(duration_ms / 1000.0, extract(epoch FROM completed_at - started_at)))::float8
$$;

-- Queue time of one claim: from when the item became claimable (back-off and lock waits
-- push available_at forward) to the claim; NULL when it was claimed before that.
CREATE FUNCTION monitoring_queue_wait(enqueued_at timestamptz, available_at timestamptz,
    dequeued_at timestamptz) RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN dequeued_at >= greatest(enqueued_at, coalesce(available_at, enqueued_at))
                THEN extract(epoch FROM dequeued_at - greatest(enqueued_at, coalesce(available_at, enqueued_at)))::float8
           END
$$;

-- The delta rows one event adds to: its minute, and all time when ``le`` is given.
CREATE FUNCTION monitoring_delta_rows(at timestamptz, seconds double precision, le smallint)
RETURNS TABLE (grain text, period timestamptz, bucket smallint) LANGUAGE sql STABLE AS $$
    SELECT 'm', date_trunc('minute', at, 'UTC'),
           CASE WHEN seconds IS NULL THEN -1 ELSE monitoring_log_bucket(seconds) END::smallint
    UNION ALL
    SELECT 'a', 'epoch'::timestamptz, le WHERE le IS NOT NULL
$$;

CREATE FUNCTION monitoring_rollup_add(p_kind text, p_tenant bigint, p_label text, p_status text,
    p_at timestamptz, p_seconds double precision, p_le smallint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO monitoring_rollup_deltas AS r (grain, period, tenant_id, kind, label, status, bucket, shard,
                                               n, total)
    SELECT g.grain, g.period, p_tenant, p_kind, p_label, p_status, g.bucket, pg_backend_pid(), 1,
           coalesce(p_seconds, 0)
    FROM monitoring_delta_rows(p_at, p_seconds, p_le) AS g
    ON CONFLICT (grain, period, tenant_id, kind, label, status, bucket, shard)
    DO UPDATE SET n = r.n + EXCLUDED.n, total = r.total + EXCLUDED.total;
END $$;

-- The rollup rows a delta row counts in: a minute also counts in its hour.
CREATE FUNCTION monitoring_rollup_grains(delta_grain text, delta_period timestamptz)
RETURNS TABLE (grain text, period timestamptz) LANGUAGE sql STABLE AS $$
    SELECT delta_grain, delta_period
    UNION ALL
    SELECT 'h', date_trunc('hour', delta_period, 'UTC') WHERE delta_grain = 'm'
$$;

-- Move the deltas into the rollups. Rows a transaction still holds are left for the next
-- fold (a worker never waits for a fold, a fold never waits).
CREATE FUNCTION monitoring_rollups_fold() RETURNS bigint LANGUAGE sql AS $$
    WITH moved AS (
        DELETE FROM monitoring_rollup_deltas
        WHERE ctid = ANY (ARRAY(SELECT ctid FROM monitoring_rollup_deltas FOR UPDATE SKIP LOCKED))
        RETURNING grain, period, tenant_id, kind, label, status, bucket, n, total
    ), added AS (
        INSERT INTO monitoring_rollups AS r (grain, period, tenant_id, kind, label, status, bucket, n, total)
        SELECT g.grain, g.period, d.tenant_id, d.kind, d.label, d.status, d.bucket, sum(d.n), sum(d.total)
        FROM moved AS d, LATERAL monitoring_rollup_grains(d.grain, d.period) AS g
        GROUP BY g.grain, g.period, d.tenant_id, d.kind, d.label, d.status, d.bucket
        ON CONFLICT (grain, period, tenant_id, kind, label, status, bucket)
        DO UPDATE SET n = r.n + EXCLUDED.n, total = r.total + EXCLUDED.total
    )
    SELECT count(*) FROM moved
$$;

CREATE FUNCTION monitoring_execution_finished() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    seconds double precision;
BEGIN
    SELECT monitoring_run_seconds(NEW.status, NEW.started_at, NEW.completed_at,
                                  q.attempt_started_at, q.dequeued_at)
    INTO seconds
    FROM (SELECT 1) AS one LEFT JOIN execution_queue q ON q.execution_id = NEW.execution_id;
    PERFORM monitoring_rollup_add('execution', NEW.tenant_id, NEW.sla_class::text, NEW.status::text,
        coalesce(NEW.completed_at, now()), seconds,
        CASE WHEN seconds IS NULL THEN -1 ELSE monitoring_le_bucket(seconds, {RUN_BOUNDS}) END::smallint);
    IF seconds IS NOT NULL AND monitoring_sla_missed(NEW.status, NEW.completed_at, NEW.timeout_at,
            EXISTS (SELECT 1 FROM sla_alerts a WHERE a.execution_id = NEW.execution_id)) THEN
        PERFORM monitoring_rollup_add('sla_miss', NEW.tenant_id, NEW.sla_class::text, NEW.status::text,
            NEW.completed_at, NULL, NULL);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION monitoring_step_finished() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    seconds double precision := monitoring_step_seconds(NEW.duration_ms, NEW.started_at, NEW.completed_at);
BEGIN
    PERFORM monitoring_rollup_add('step', e.tenant_id, NEW.step_type, '', NEW.completed_at, seconds,
        monitoring_le_bucket(seconds, {STEP_BOUNDS}))
    FROM executions e WHERE e.execution_id = NEW.execution_id;
    RETURN NULL;
END $$;

CREATE FUNCTION monitoring_queue_claim_ended() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    seconds double precision := monitoring_queue_wait(OLD.enqueued_at, OLD.available_at, OLD.dequeued_at);
BEGIN
    IF seconds IS NOT NULL THEN
        PERFORM monitoring_rollup_add('queue_wait', e.tenant_id, OLD.sla_class::text, '', OLD.dequeued_at,
            seconds, NULL)
        FROM executions e WHERE e.execution_id = OLD.execution_id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION monitoring_sla_alert_raised() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    e executions%ROWTYPE;
BEGIN
    PERFORM monitoring_rollup_add('sla_alert', NEW.tenant_id, NEW.kind, '', NEW.detected_at, NULL, -1::smallint);
    -- Its execution may have ended already, counted as having met its SLA: it misses it now.
    -- The row lock orders this with a finish in flight (whose trigger then sees this alert)
    -- and with another alert for the same execution: counted once either way.
    SELECT * INTO e FROM executions x WHERE x.execution_id = NEW.execution_id FOR NO KEY UPDATE;
    IF e.status IN ({FINISHED})
            AND monitoring_run_seconds(e.status, e.started_at, e.completed_at, NULL, NULL) IS NOT NULL
            AND NOT monitoring_sla_missed(e.status, e.completed_at, e.timeout_at,
                EXISTS (SELECT 1 FROM sla_alerts a WHERE a.execution_id = e.execution_id AND a.id <> NEW.id)) THEN
        PERFORM monitoring_rollup_add('sla_miss', e.tenant_id, e.sla_class::text, e.status::text,
            e.completed_at, NULL, NULL);
    END IF;
    RETURN NULL;
END $$;

-- The events the triggers would have recorded for the rows present, in one pass (of one
-- tenant when given), added to the rollups as a fold would. A queue item counts its last
-- claim only (earlier attempts left no trace).
CREATE FUNCTION monitoring_rollups_backfill(p_tenant bigint DEFAULT NULL) RETURNS void LANGUAGE sql AS $$
    INSERT INTO monitoring_rollups AS r (grain, period, tenant_id, kind, label, status, bucket, n, total)
    SELECT g.grain, g.period, f.tenant_id, f.kind, f.label, f.status, d.bucket, count(*),
           coalesce(sum(f.seconds), 0)
    FROM (
        SELECT 'execution' AS kind, x.tenant_id, x.label, x.status, x.at, x.seconds,
               CASE WHEN x.seconds IS NULL THEN -1
                    ELSE monitoring_le_bucket(x.seconds, {RUN_BOUNDS}) END::smallint AS le
        FROM (
            SELECT e.tenant_id, e.sla_class::text AS label, e.status::text AS status,
                   coalesce(e.completed_at, now()) AS at,
                   monitoring_run_seconds(e.status, e.started_at, e.completed_at,
                                          q.attempt_started_at, q.dequeued_at) AS seconds
            FROM executions e LEFT JOIN execution_queue q ON q.execution_id = e.execution_id
            WHERE e.status IN ({FINISHED}) AND (p_tenant IS NULL OR e.tenant_id = p_tenant)
        ) AS x
        UNION ALL
        SELECT 'sla_miss', e.tenant_id, e.sla_class::text, e.status::text, e.completed_at, NULL, NULL::smallint
        FROM executions e LEFT JOIN execution_queue q ON q.execution_id = e.execution_id
        WHERE e.status IN ({FINISHED}) AND (p_tenant IS NULL OR e.tenant_id = p_tenant)
          AND monitoring_run_seconds(e.status, e.started_at, e.completed_at,
                                     q.attempt_started_at, q.dequeued_at) IS NOT NULL
          AND monitoring_sla_missed(e.status, e.completed_at, e.timeout_at,
                EXISTS (SELECT 1 FROM sla_alerts a WHERE a.execution_id = e.execution_id))
        UNION ALL
        SELECT 'step', e.tenant_id, s.step_type, '', s.completed_at, x.seconds,
               monitoring_le_bucket(x.seconds, {STEP_BOUNDS})
        FROM execution_steps s JOIN executions e ON e.execution_id = s.execution_id,
             LATERAL (SELECT monitoring_step_seconds(s.duration_ms, s.started_at, s.completed_at)) AS x(seconds)
        WHERE s.completed_at IS NOT NULL AND (s.duration_ms IS NOT NULL OR s.started_at IS NOT NULL)
          AND (p_tenant IS NULL OR e.tenant_id = p_tenant)
        UNION ALL
        SELECT 'queue_wait', e.tenant_id, q.sla_class::text, '', q.dequeued_at, x.seconds, NULL::smallint
        FROM execution_queue q JOIN executions e ON e.execution_id = q.execution_id,
             LATERAL (SELECT monitoring_queue_wait(q.enqueued_at, q.available_at, q.dequeued_at)) AS x(seconds)
        WHERE q.status <> 'processing' AND x.seconds IS NOT NULL AND (p_tenant IS NULL OR e.tenant_id = p_tenant)
        UNION ALL
        SELECT 'sla_alert', a.tenant_id, a.kind, '', a.detected_at, NULL, -1::smallint
        FROM sla_alerts a WHERE p_tenant IS NULL OR a.tenant_id = p_tenant
    ) AS f, LATERAL monitoring_delta_rows(f.at, f.seconds, f.le) AS d,
        LATERAL monitoring_rollup_grains(d.grain, d.period) AS g
    GROUP BY g.grain, g.period, f.tenant_id, f.kind, f.label, f.status, d.bucket
    ON CONFLICT (grain, period, tenant_id, kind, label, status, bucket)
    DO UPDATE SET n = r.n + EXCLUDED.n, total = r.total + EXCLUDED.total
$$;

CREATE TRIGGER monitoring_execution_finished AFTER UPDATE OF status ON executions FOR EACH ROW
    WHEN (NEW.status IN ({FINISHED}) AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION monitoring_execution_finished();
CREATE TRIGGER monitoring_execution_inserted_finished AFTER INSERT ON executions FOR EACH ROW
    WHEN (NEW.status IN ({FINISHED}))
    EXECUTE FUNCTION monitoring_execution_finished();
CREATE TRIGGER monitoring_step_finished AFTER UPDATE OF completed_at ON execution_steps FOR EACH ROW
    WHEN (NEW.completed_at IS NOT NULL AND OLD.completed_at IS DISTINCT FROM NEW.completed_at
          AND (NEW.duration_ms IS NOT NULL OR NEW.started_at IS NOT NULL))
    EXECUTE FUNCTION monitoring_step_finished();
CREATE TRIGGER monitoring_step_inserted_finished AFTER INSERT ON execution_steps FOR EACH ROW
    WHEN (NEW.completed_at IS NOT NULL AND (NEW.duration_ms IS NOT NULL OR NEW.started_at IS NOT NULL))
    EXECUTE FUNCTION monitoring_step_finished();
CREATE TRIGGER monitoring_queue_claim_ended AFTER UPDATE OF status ON execution_queue FOR EACH ROW
    WHEN (OLD.status = 'processing' AND NEW.status <> 'processing' AND OLD.dequeued_at IS NOT NULL)
    EXECUTE FUNCTION monitoring_queue_claim_ended();
CREATE TRIGGER monitoring_sla_alert_raised AFTER INSERT ON sla_alerts FOR EACH ROW
    EXECUTE FUNCTION monitoring_sla_alert_raised();

SELECT monitoring_rollups_backfill();

-- The gauge of open dead letters: archived ones stay in the table until they are pruned.
CREATE INDEX dlq_open ON execution_dlq (sla_class) WHERE NOT requeued AND NOT archived;
"""

DROP_FUNCTIONS = """
DROP INDEX dlq_open;
DROP TRIGGER monitoring_sla_alert_raised ON sla_alerts;
DROP TRIGGER monitoring_queue_claim_ended ON execution_queue;
DROP TRIGGER monitoring_step_inserted_finished ON execution_steps;
DROP TRIGGER monitoring_step_finished ON execution_steps;
DROP TRIGGER monitoring_execution_inserted_finished ON executions;
DROP TRIGGER monitoring_execution_finished ON executions;
DROP FUNCTION monitoring_rollups_backfill(bigint);
DROP FUNCTION monitoring_rollups_fold();
DROP FUNCTION monitoring_rollup_grains(text, timestamptz);
DROP FUNCTION monitoring_sla_alert_raised();
DROP FUNCTION monitoring_queue_claim_ended();
DROP FUNCTION monitoring_step_finished();
DROP FUNCTION monitoring_execution_finished();
DROP FUNCTION monitoring_rollup_add(text, bigint, text, text, timestamptz, double precision, smallint);
DROP FUNCTION monitoring_delta_rows(timestamptz, double precision, smallint);
DROP FUNCTION monitoring_queue_wait(timestamptz, timestamptz, timestamptz);
DROP FUNCTION monitoring_step_seconds(integer, timestamptz, timestamptz);
DROP FUNCTION monitoring_sla_missed(execution_status, timestamptz, timestamptz, boolean);
DROP FUNCTION monitoring_run_seconds(execution_status, timestamptz, timestamptz, timestamptz, timestamptz);
DROP FUNCTION monitoring_le_bucket(double precision, double precision[]);
DROP FUNCTION monitoring_log_bucket(double precision);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0010_secret_access_and_api_tokens"),
        ("monitoring", "0003_sla_alert_acknowledgement"),
    ]

    operations = [
        migrations.CreateModel(
            name="Rollup",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "grain",
                        "period",
                        "tenant_id",
                        "kind",
                        "label",
                        "status",
                        "bucket",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("grain", models.CharField(max_length=1)),
                ("period", models.DateTimeField()),
                ("tenant_id", models.BigIntegerField()),
                ("kind", models.CharField(max_length=16)),
                ("label", models.CharField(max_length=64)),
                ("status", models.CharField(max_length=16)),
                ("bucket", models.SmallIntegerField()),
                ("n", models.BigIntegerField()),
                ("total", models.FloatField()),
            ],
            options={"db_table": "monitoring_rollups"},
        ),
        migrations.CreateModel(
            name="RollupDelta",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "grain",
                        "period",
                        "tenant_id",
                        "kind",
                        "label",
                        "status",
                        "bucket",
                        "shard",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("grain", models.CharField(max_length=1)),
                ("period", models.DateTimeField()),
                ("tenant_id", models.BigIntegerField()),
                ("kind", models.CharField(max_length=16)),
                ("label", models.CharField(max_length=64)),
                ("status", models.CharField(max_length=16)),
                ("bucket", models.SmallIntegerField()),
                ("shard", models.IntegerField()),
                ("n", models.BigIntegerField()),
                ("total", models.FloatField()),
            ],
            options={"db_table": "monitoring_rollup_deltas"},
        ),
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
    ]
