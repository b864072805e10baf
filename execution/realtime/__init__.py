"""Live progress over WebSockets (docs/contract.md#live-progress).

A committed event becomes a *pointer* (execution, tenant, event id) on two Channels groups:
through ``channels_redis`` when ``REDIS_URL`` is set, otherwise through PostgreSQL
LISTEN/NOTIFY and a bridge in each web process. Consumers read the events themselves from
``execution_events``, so a lost pointer delays an event but never loses it.
See docs/live-progress.md.
"""
