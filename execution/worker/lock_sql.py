"""The statements of the asset locks (docs/engine.md "Locks"); execution/worker/locks.py runs them.

State. ``execution_locks`` has one row per (asset, tenant): ``mode``, ``holders`` (every
execution holding it: one for ``exclusive``, any number for ``shared``), the holder of
record (``execution_id``, ``owner_tag``), ``is_active``/``expires_at`` (pushed by the
holders' heartbeats) and ``version`` (bumped by every take, park and release).
``execution_lock_waiters`` is the line of each asset: ordered by (priority, since, id),
where ``since`` is when the execution began waiting (kept when it moves to another line).

Rules. Every statement that changes a lock row locks it first; a statement touching several
rows locks them in ``id`` order (``ORDER BY l.id FOR UPDATE``), so two statements never wait
for each other in a cycle. A request is granted when the row is free (inactive, expired or
without holders), held only by the requester, or held ``shared`` and the request is
``shared``; and no earlier waiter in the asset's line wants a conflicting mode (a waiting
writer blocks later readers; an earlier reader in line blocks a later writer).

Wake-ups. A release wakes, in its own statement, the waiters of the released assets that can
go now (the head of a free line, or the readers before its first writer), makes their queue
items claimable and NOTIFYs the clusters; it also NOTIFYs ``ops_lock`` (the clusters' listeners
wake the lines again, coalesced: the backstop, and what a fan-out thread waits on). A waiter
that parked after the release's snapshot was taken but before the release locked the row is
invisible to that statement: the release sees that the row's version changed since its
snapshot and returns ``raced``, and its caller wakes the lines again in a new statement.
"""

from __future__ import annotations

from execution.worker.wake import WAKE_CHANNEL

LOCK_CHANNEL = "ops_lock"
LOCK_CLAIM_LEADS = "('pending', 'processing')"  # a waiter whose item is elsewhere is stale

# A lock row ``l`` is held right now (a holder heartbeated within the lease).
HELD = "(l.is_active AND l.expires_at > now() AND cardinality(l.holders) > 0)"

# The earliest waiter in the line of ``c.asset_id`` ahead of the requester whose mode
# conflicts with the request's ``want`` (NULL when none); the requester's place is
# (%(priority)s, me.since, me.wid) from the ``me`` CTE.
AHEAD = """(SELECT w.execution_id FROM execution_lock_waiters w
     WHERE w.tenant_id = %(tenant)s AND w.asset_id = c.asset_id
       AND w.execution_id <> %(execution)s::uuid
       AND ({want} = 'exclusive' OR w.mode = 'exclusive')
       AND (w.priority, w.since, w.id) < (%(priority)s, me.since, me.wid)
       AND EXISTS (SELECT 1 FROM execution_queue wq
                   WHERE wq.execution_id = w.execution_id AND wq.status IN ('pending', 'processing'))
     ORDER BY w.priority, w.since, w.id LIMIT 1)"""

# The requester's place in line: where it waits already, else a newcomer (now, last).
ME = """me AS (
    SELECT coalesce(min(w.since), now()) AS since, coalesce(min(w.id), 9223372036854775807) AS wid
    FROM execution_lock_waiters w WHERE w.execution_id = %(execution)s::uuid
)"""

# Take every requested lock or none (``%(requests)s``: [{"asset_id", "mode"}] in lock order).
# Rows that do not exist yet are reported (``missing``) and created by the caller, which
# then takes again. On success the requester leaves every line and ``lock_acquired`` is
# written; otherwise the first conflict is returned with its holder or the waiter ahead.
#
# With a worker's lease (``%(item)s``/``%(token)s``; NULL from a thread that waits itself)
# a conflict parks the attempt in the same statement: the execution takes (or keeps) its
# place in the line of the busy asset, leaving any other line, and its item is handed back,
# not claimable until a release wakes it (``available_at`` infinity), the attempt not
# counted; ``lock_wait`` names the holder. The verdict is made under the rows' locks, so
# nothing can be released between it and the park; a release already running when the park
# commits sees the row's bumped version and wakes again. A wait past ``%(wait_limit)s``
# seconds does not park: the caller fails the execution.
#
# ``lock_acquired`` is stamped with the clock once the rows are locked (not the statement's
# start, which may precede the previous holder's commit): spans read from the events are
# the real holds.
#
# The verdict, under the rows' locks (``ok``: take; ``park``: go in line; neither: busy
# without a lease, past the wait limit, a row missing or the lease lost).
# ``{rows_lock}``: ``UPDATE`` for a statement that may change the rows (a take, a park); the
# inline run of readers only (store.INLINE_SHARED_SQL) judges under ``SHARE``: readers do not
# wait for each other, and a take, which locks the rows ``FOR UPDATE``, waits for them.
_TAKE_JUDGE = f"""
lease AS (
    SELECT q.id FROM execution_queue q
    WHERE q.id = %(item)s AND q.lease_token = %(token)s AND q.status = 'processing'
      AND q.lease_expires_at > now()
    FOR UPDATE
),
req AS (
    SELECT r.asset_id, r.mode FROM jsonb_to_recordset(%(requests)s::jsonb) AS r(asset_id text, mode text)
),
{ME},
cur AS (
    SELECT l.id, l.asset_id, l.mode, l.holders, l.execution_id, l.owner_tag, {HELD} AS live
    FROM execution_locks l
    WHERE l.tenant_id = %(tenant)s AND l.asset_id IN (SELECT asset_id FROM req)
    ORDER BY l.id
    FOR {{rows_lock}}
),
verdict AS (
    SELECT c.id, c.asset_id, r.mode AS want, c.mode, c.live, c.holders, c.execution_id, c.owner_tag,
           (NOT c.live OR c.holders = ARRAY[%(execution)s::uuid]
            OR (r.mode = 'shared' AND c.mode = 'shared')) AS compatible,
           CASE WHEN c.live AND %(execution)s::uuid = ANY(c.holders) THEN NULL
                ELSE {AHEAD.format(want="r.mode")} END AS ahead
    FROM cur c JOIN req r ON r.asset_id = c.asset_id CROSS JOIN me
),
blocked AS (
    SELECT v.* FROM verdict v WHERE NOT v.compatible OR v.ahead IS NOT NULL ORDER BY v.id LIMIT 1
),
missing AS (
    SELECT r.asset_id FROM req r WHERE NOT EXISTS (SELECT 1 FROM cur c WHERE c.asset_id = r.asset_id)
),
why AS (
    SELECT 'asset ' || b.asset_id || ' (' || b.want || ')'
           || CASE WHEN b.live
                   THEN ' is held by execution ' || coalesce(b.execution_id::text, 'unknown')
                        || CASE WHEN b.mode = 'shared' AND cardinality(b.holders) > 1
                                THEN ' and ' || (cardinality(b.holders) - 1) || ' other reader(s)' ELSE '' END
                        || ' (' || b.mode || ')'
                        || CASE WHEN b.ahead IS NOT NULL
                                THEN '; execution ' || b.ahead || ' waits ahead' ELSE '' END
                   ELSE ': waiting behind execution ' || b.ahead || ', in line before it' END AS reason
    FROM blocked b
),
ok AS (
    SELECT NOT EXISTS (SELECT 1 FROM blocked) AND NOT EXISTS (SELECT 1 FROM missing)
           AND (%(item)s::bigint IS NULL OR EXISTS (SELECT 1 FROM lease)) AS ok,
           EXISTS (SELECT 1 FROM blocked) AND EXISTS (SELECT 1 FROM lease)
           AND (SELECT since FROM me) >= now() - make_interval(secs => %(wait_limit)s) AS park
)"""  # noqa: S608 - composed of constant fragments; every value is a parameter
TAKE_JUDGE = _TAKE_JUDGE.replace("{rows_lock}", "UPDATE")
TAKE_JUDGE_SHARE = _TAKE_JUDGE.replace("{rows_lock}", "SHARE")

# The park: the execution in the busy asset's line (leaving any other), its item handed back
# not claimable, the row's version bumped (a release already running sees it and wakes again).
TAKE_PARK = """
bump AS (
    UPDATE execution_locks l SET version = l.version + 1
    FROM blocked b, ok WHERE ok.park AND l.id = b.id
    RETURNING l.id
),
moved AS (
    DELETE FROM execution_lock_waiters w USING blocked b, ok
    WHERE ok.park AND w.execution_id = %(execution)s::uuid
      AND NOT (w.tenant_id = %(tenant)s AND w.asset_id = b.asset_id)
    RETURNING w.tenant_id, w.asset_id
),
line AS (
    INSERT INTO execution_lock_waiters (asset_id, tenant_id, execution_id, mode, priority, since, created_at)
    SELECT b.asset_id, %(tenant)s, %(execution)s::uuid, b.want, %(priority)s, me.since, now()
    FROM blocked b, me, ok WHERE ok.park
    ON CONFLICT (tenant_id, asset_id, execution_id)
    DO UPDATE SET mode = EXCLUDED.mode, priority = EXCLUDED.priority
    RETURNING id
),
parked AS (
    UPDATE execution_queue q
    SET status = 'pending', lease_token = NULL, lease_expires_at = NULL, attempt_started_at = NULL,
        worker_id = '', completed_at = NULL,
        last_error = left('waiting for ' || why.reason, 2000),
        available_at = 'infinity', attempt_count = greatest(q.attempt_count - 1, 0), updated_at = now()
    FROM lease, why, ok WHERE ok.park AND q.id = lease.id
    RETURNING q.id
)"""

# In place of TAKE_PARK where a statement never parks (it changes no lock row): the same
# names, empty. Its caller parks through a take when the locks were busy.
NO_PARK = """
bump AS (SELECT NULL::bigint AS id WHERE false),
moved AS (SELECT NULL::bigint AS tenant_id, NULL::text AS asset_id WHERE false),
line AS (SELECT NULL::bigint AS id WHERE false),
parked AS (SELECT NULL::bigint AS id WHERE false)"""

# The ``lock_wait`` event's details (from ``blocked`` and ``why``).
WAIT_DETAILS = """(SELECT jsonb_build_object(
                         'asset_id', b.asset_id, 'mode', b.want,
                         'holder_execution_id',
                         CASE WHEN b.live THEN coalesce(b.execution_id::text, 'unknown') ELSE 'unknown' END,
                         'holder_mode', b.mode,
                         'holders', CASE WHEN b.live THEN cardinality(b.holders) ELSE 0 END,
                         'ahead_execution_id', b.ahead, 'reason', why.reason) FROM blocked b, why)"""

# What the caller reads of the verdict (locks.py ``take_row``), then its own columns.
TAKE_OUT = """ok.ok, (SELECT json_agg(asset_id) FROM missing), b.asset_id, b.want, b.mode,
       CASE WHEN b.live THEN cardinality(b.holders) ELSE 0 END,
       CASE WHEN b.live THEN b.execution_id END, b.owner_tag, b.ahead, me.since, (SELECT reason FROM why),
       ok.park AND EXISTS (SELECT 1 FROM parked),
       (SELECT json_agg(json_build_object('tenant_id', tenant_id, 'asset_id', asset_id)) FROM moved),
       %(item)s::bigint IS NOT NULL AND NOT EXISTS (SELECT 1 FROM lease)"""

TAKE_SQL = f"""
WITH {TAKE_JUDGE},
taken AS (
    UPDATE execution_locks l
    SET mode = CASE WHEN NOT v.live THEN v.want
                    WHEN v.holders = ARRAY[%(execution)s::uuid]
                         THEN CASE WHEN v.want = 'exclusive' OR l.mode = 'exclusive'
                                   THEN 'exclusive' ELSE 'shared' END
                    ELSE l.mode END,
        holders = CASE WHEN NOT v.live THEN ARRAY[%(execution)s::uuid]
                       WHEN %(execution)s::uuid = ANY(l.holders) THEN l.holders
                       ELSE l.holders || %(execution)s::uuid END,
        execution_id = CASE WHEN v.live THEN l.execution_id ELSE %(execution)s::uuid END,
        owner_tag = CASE WHEN v.live THEN l.owner_tag ELSE %(owner)s END,
        acquired_at = CASE WHEN v.live THEN l.acquired_at ELSE now() END,
        expires_at = now() + make_interval(secs => %(ttl)s), last_heartbeat_at = now(),
        is_active = true, version = l.version + 1, updated_at = now()
    FROM verdict v, ok WHERE ok.ok AND l.id = v.id
    RETURNING l.asset_id, l.mode
),
unwait AS (
    DELETE FROM execution_lock_waiters w USING ok
    WHERE ok.ok AND w.execution_id = %(execution)s::uuid
    RETURNING w.tenant_id, w.asset_id
),
{TAKE_PARK},
x AS (
    SELECT e.execution_id, e.tenant_id, e.trace_id FROM executions e, ok
    WHERE (ok.ok OR ok.park) AND e.execution_id = %(execution)s::uuid
),
ev AS (
    INSERT INTO execution_events (event_id, execution_id, tenant_id, event_type, actor_id, actor_type,
                                  details, error_message, created_at, trace_id)
    SELECT gen_random_uuid(), x.execution_id, x.tenant_id,
           CASE WHEN ok.ok THEN 'lock_acquired' ELSE 'lock_wait' END, NULL, 'worker',
           CASE WHEN ok.ok
                THEN jsonb_build_object(
                         'assets', (SELECT jsonb_agg(t.asset_id ORDER BY length(t.asset_id), t.asset_id)
                                    FROM taken t),
                         'modes', (SELECT jsonb_object_agg(t.asset_id, t.mode) FROM taken t),
                         'owner_tag', %(owner)s::text)
                ELSE {WAIT_DETAILS} END,
           '', clock_timestamp(), x.trace_id
    FROM x, ok
    RETURNING id, execution_id, tenant_id, event_type, from_status, to_status, details, step_index,
              error_message
),
note AS (
    SELECT pg_notify(%(channel)s, json_build_object(
        'execution_id', execution_id, 'tenant_id', tenant_id, 'event_id', max(id))::text)
    FROM ev WHERE %(notify)s GROUP BY execution_id, tenant_id
)
SELECT {TAKE_OUT},
       (SELECT count(*) FROM unwait) + (SELECT count(*) FROM bump) + (SELECT count(*) FROM line),
       (SELECT count(*) FROM note),
       (SELECT json_agg(json_build_object('id', id, 'execution_id', execution_id, 'tenant_id', tenant_id,
            'event_type', event_type, 'from_status', from_status, 'to_status', to_status,
            'details', details, 'step_index', step_index, 'error_message', error_message)) FROM ev)
FROM ok CROSS JOIN me LEFT JOIN blocked b ON true
"""  # noqa: S608 - composed of constant fragments; every value is a parameter

# Lock rows of assets used for the first time (not locked: a take follows).
CREATE_ROWS_SQL = """
INSERT INTO execution_locks (lock_id, asset_id, tenant_id, owner_tag, is_active, created_at, updated_at,
                             mode, holders, version)
SELECT gen_random_uuid(), a, %(tenant)s, '', false, now(), now(), 'exclusive', '{}', 0
FROM unnest(%(assets)s::text[]) AS a
ON CONFLICT (asset_id, tenant_id) DO NOTHING
"""

# Which executions of the lines in ``{state}`` (tenant_id, asset_id, held, mode: the lock
# state to judge by) may go now: the head of a free line, or the readers before the line's
# first writer while the lock is free or held shared. Their parked queue items become
# claimable (an item locked right now is being claimed or run: it needs no wake) and the
# clusters are told.
WAKE_CTES = """
wake_line AS (
    SELECT w.execution_id, w.mode, w.tenant_id, w.asset_id,
           row_number() OVER (PARTITION BY w.tenant_id, w.asset_id ORDER BY w.priority, w.since, w.id) AS n
    FROM execution_lock_waiters w
    JOIN {state} st ON st.tenant_id = w.tenant_id AND st.asset_id = w.asset_id
    WHERE w.execution_id IS DISTINCT FROM {leaving}
      AND EXISTS (SELECT 1 FROM execution_queue wq
                  WHERE wq.execution_id = w.execution_id AND wq.status IN ('pending', 'processing'))
),
wake_go AS (
    SELECT wl.execution_id FROM wake_line wl
    JOIN {state} st ON st.tenant_id = wl.tenant_id AND st.asset_id = wl.asset_id
    WHERE (NOT st.held AND wl.n = 1)
       OR (wl.mode = 'shared' AND (NOT st.held OR st.mode = 'shared')
           AND NOT EXISTS (SELECT 1 FROM wake_line f
                           WHERE f.tenant_id = wl.tenant_id AND f.asset_id = wl.asset_id
                             AND f.mode = 'exclusive' AND f.n < wl.n))
),
wake_items AS (
    SELECT q.id FROM execution_queue q
    WHERE q.execution_id IN (SELECT execution_id FROM wake_go)
      AND q.status = 'pending' AND q.available_at > now()
    FOR UPDATE OF q SKIP LOCKED
),
woken AS (
    UPDATE execution_queue q SET available_at = now(), updated_at = now()
    FROM wake_items i WHERE q.id = i.id
    RETURNING q.id
),
wake_note AS (
    SELECT pg_notify('{wake_channel}', '') WHERE EXISTS (SELECT 1 FROM woken)
)"""


def wake_ctes(state: str, leaving: str = "NULL::uuid") -> str:
    """``leaving``: an execution whose waiter rows this same statement deletes (its snapshot
    still shows them), left out of the lines."""
    return WAKE_CTES.format(state=state, wake_channel=WAKE_CHANNEL, leaving=leaving)


# The release of ``%(execution)s``'s hold on ``%(assets)s`` (when ``{cond}``): the execution
# leaves ``holders`` (the lock goes inactive when nobody is left; the next holder becomes
# the holder of record), ``ops_lock`` is notified per asset, the lines wake, and ``raced``
# says whether a row changed after this statement's snapshot (then wake again).
_RELEASE_CTES = """
rel_rows AS (
    SELECT l.id, l.version FROM execution_locks l
    WHERE {cond} AND l.tenant_id = %(tenant)s AND l.asset_id = ANY(%(assets)s::text[])
      AND %(execution)s::uuid = ANY(l.holders)
    ORDER BY l.id
    FOR UPDATE
),
released AS (
    UPDATE execution_locks l
    SET holders = array_remove(l.holders, %(execution)s::uuid),
        is_active = cardinality(array_remove(l.holders, %(execution)s::uuid)) > 0,
        execution_id = CASE WHEN l.execution_id = %(execution)s::uuid
                            THEN coalesce((array_remove(l.holders, %(execution)s::uuid))[1], l.execution_id)
                            ELSE l.execution_id END,
        owner_tag = CASE WHEN l.execution_id = %(execution)s::uuid
                              AND cardinality(array_remove(l.holders, %(execution)s::uuid)) > 0
                         THEN coalesce(
                             (SELECT 'execution:' || q.execution_id || ':worker:' || q.worker_id
                              FROM execution_queue q
                              WHERE q.execution_id = (array_remove(l.holders, %(execution)s::uuid))[1]),
                             '')
                         ELSE l.owner_tag END,
        version = l.version + 1, updated_at = now()
    FROM rel_rows r WHERE l.id = r.id
    RETURNING l.tenant_id, l.asset_id, l.mode, l.is_active AS held
),
rel_raced AS (
    SELECT EXISTS (SELECT 1 FROM rel_rows r JOIN execution_locks s ON s.id = r.id
                   WHERE s.version <> r.version) AS raced
),
rel_note AS (
    SELECT pg_notify('{channel}', json_build_object('tenant_id', tenant_id, 'asset_id', asset_id)::text)
    FROM released
),{wake}"""


def release_ctes(cond: str) -> str:
    """The release's CTEs, for a statement whose WITH they join (``cond``: when to release)."""
    return _RELEASE_CTES.format(cond=cond, channel=LOCK_CHANNEL, wake=wake_ctes("released"))


RELEASE_OUT = """(SELECT raced FROM rel_raced), (SELECT count(*) FROM rel_note),
    (SELECT count(*) FROM wake_note), (SELECT json_agg(asset_id) FROM released)"""

# Release on its own (every path but the worker's finish, which has it inline).
RELEASE_SQL = f"""
WITH {release_ctes("true")}
SELECT {RELEASE_OUT}
"""

# Wake the lines of %(lines)s ([{"tenant_id", "asset_id"}]) from the locks' state now.
WAKE_SQL = f"""
WITH lines AS (
    SELECT DISTINCT a.tenant_id, a.asset_id
    FROM jsonb_to_recordset(%(lines)s::jsonb) AS a(tenant_id bigint, asset_id text)
),
st AS (
    SELECT a.tenant_id, a.asset_id, coalesce({HELD}, false) AS held, coalesce(l.mode, 'exclusive') AS mode
    FROM lines a LEFT JOIN execution_locks l ON l.tenant_id = a.tenant_id AND l.asset_id = a.asset_id
),
{wake_ctes("st")}
SELECT (SELECT count(*) FROM woken), (SELECT count(*) FROM wake_note)
"""  # noqa: S608 - constant fragments; every value is a parameter

# Leave every line (an execution that ends or stops waiting without taking its locks);
# returns the lines left, which the caller wakes.
UNWAIT_SQL = """
DELETE FROM execution_lock_waiters WHERE execution_id = %(execution)s::uuid
RETURNING tenant_id, asset_id
"""

# The sweep (each cluster, every OPS_LOCK_SWEEP_SECONDS): forget waiters whose item left the
# queue, and make claimable every waiter past the wait limit (the worker then fails it,
# naming the holder). Returns the lines that still have waiters, which the caller wakes.
SWEEP_SQL = """
WITH stale AS (
    DELETE FROM execution_lock_waiters w
    WHERE NOT EXISTS (SELECT 1 FROM execution_queue q
                      WHERE q.execution_id = w.execution_id AND q.status IN ('pending', 'processing'))
    RETURNING w.id
),
overdue AS (
    UPDATE execution_queue q SET available_at = now(), updated_at = now()
    WHERE q.status = 'pending' AND q.available_at > now()
      AND q.execution_id IN (SELECT w.execution_id FROM execution_lock_waiters w
                             WHERE w.since < now() - make_interval(secs => %(limit)s))
    RETURNING q.id
)
SELECT (SELECT count(*) FROM stale), (SELECT count(*) FROM overdue),
       (SELECT json_agg(DISTINCT jsonb_build_object('tenant_id', tenant_id, 'asset_id', asset_id))
        FROM execution_lock_waiters)
"""

# Reaper: locks whose holders all stopped heartbeating are freed; returns them for a wake.
EXPIRED_SQL = """
WITH gone AS (
    SELECT id FROM execution_locks WHERE is_active AND expires_at < now() ORDER BY id FOR UPDATE SKIP LOCKED
)
UPDATE execution_locks l
SET is_active = false, holders = '{}', version = l.version + 1, updated_at = now()
FROM gone WHERE l.id = gone.id
RETURNING l.tenant_id, l.asset_id
"""
