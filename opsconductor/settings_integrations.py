"""Settings of the integrations at the product's edges (docs/audit.md, docs/telemetry.md,
docs/oidc.md), read from the environment like the rest; ``opsconductor/settings.py`` imports
them. Each is off until its variables are set."""

from __future__ import annotations

from opsconductor.env import ConfigError, env_float, env_int, env_str

# Audit chain (docs/audit.md): the sealer chains rows older than the settle time (a row
# committed later than that after its insert began is not covered), so many per batch.
AUDIT_SEAL_SETTLE_SECONDS = env_float("AUDIT_SEAL_SETTLE_SECONDS", 30.0, minimum=0.0, maximum=3600.0)
AUDIT_SEAL_BATCH_SIZE = env_int("AUDIT_SEAL_BATCH_SIZE", 5000, minimum=1, maximum=100_000)
# Optional sinks, delivered at least once from a stored cursor: a webhook (JSON lines, signed
# with HMAC-SHA256 of AUDIT_SINK_WEBHOOK_SECRET) and/or syslog over TCP (tcp://host:port).
AUDIT_SINK_WEBHOOK_URL = env_str("AUDIT_SINK_WEBHOOK_URL")
AUDIT_SINK_WEBHOOK_SECRET = env_str("AUDIT_SINK_WEBHOOK_SECRET")
AUDIT_SINK_SYSLOG = env_str("AUDIT_SINK_SYSLOG")
if AUDIT_SINK_SYSLOG and not AUDIT_SINK_SYSLOG.startswith("tcp://"):
    raise ConfigError("AUDIT_SINK_SYSLOG must look like tcp://host:port (UDP cannot confirm delivery)")
AUDIT_SINK_BATCH_SIZE = env_int("AUDIT_SINK_BATCH_SIZE", 500, minimum=1, maximum=10_000)
AUDIT_SINK_TIMEOUT_SECONDS = env_float("AUDIT_SINK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
