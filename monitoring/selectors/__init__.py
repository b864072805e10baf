"""Read-only SQL behind /metrics, the summary endpoint and the dashboard.

Everything is computed by PostgreSQL at read time, so every web process answers the same
figures whatever the number of worker and web processes (nothing lives in process memory).
"""
