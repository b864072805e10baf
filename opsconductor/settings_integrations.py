"""Settings of the integrations at the product's edges (docs/audit.md, docs/telemetry.md,
docs/oidc.md), read from the environment like the rest; ``opsconductor/settings.py`` imports
them. Each is off until its variables are set."""

from __future__ import annotations

import re

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

# OpenTelemetry (docs/telemetry.md): traces exported by OTLP/HTTP to <endpoint>/v1/traces,
# only when the endpoint is set (unset: nothing is imported or measured). The operator's
# collector, not a tenant's outbound call.
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT")
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "opsconductor") or "opsconductor"

# OpenID Connect login (docs/oidc.md), on only when OIDC_ISSUER is set. The provider's
# endpoints come from <issuer>/.well-known/openid-configuration; local accounts keep working.
OIDC_ISSUER = env_str("OIDC_ISSUER")
OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID", "") or ""
OIDC_RP_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET", "") or ""
if OIDC_ISSUER and not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
    raise ConfigError("OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be set too")
OIDC_RP_SCOPES = env_str("OIDC_SCOPES", "openid email profile") or "openid email profile"
OIDC_RP_SIGN_ALGO = env_str("OIDC_SIGN_ALGO", "RS256") or "RS256"
OIDC_TIMEOUT_SECONDS = env_float("OIDC_TIMEOUT_SECONDS", 10.0, minimum=0.5)
OIDC_TIMEOUT = OIDC_TIMEOUT_SECONDS  # mozilla-django-oidc's name for its token/userinfo calls
# The claim naming the new account (Django's username rules apply; a taken name is refused).
OIDC_USERNAME_CLAIM = env_str("OIDC_USERNAME_CLAIM", "preferred_username") or "preferred_username"
# The claim listing the person's groups, and the pattern (named groups tenant, role) that
# turns one into a membership; values that do not match are ignored.
OIDC_ROLES_CLAIM = env_str("OIDC_ROLES_CLAIM", "groups") or "groups"
OIDC_ROLES_PATTERN = (
    env_str("OIDC_ROLES_PATTERN", r"ops:(?P<tenant>[a-z0-9][a-z0-9_-]*):(?P<role>[a-z]+)")
    or r"ops:(?P<tenant>[a-z0-9][a-z0-9_-]*):(?P<role>[a-z]+)"
)
try:
    if not {"tenant", "role"} <= set(re.compile(OIDC_ROLES_PATTERN).groupindex):
        raise ConfigError("OIDC_ROLES_PATTERN must have the named groups (?P<tenant>...) and (?P<role>...)")
except re.error as _error:
    raise ConfigError(f"OIDC_ROLES_PATTERN is not a regular expression: {_error}") from None
# mozilla-django-oidc: keep the ID token for the logout at the provider.
OIDC_STORE_ID_TOKEN = True
OIDC_OP_LOGOUT_URL_METHOD = "opsconductor.oidc.provider_logout_url"
# A failed single sign-on lands on the login page, which says so.
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
