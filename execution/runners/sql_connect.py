"""How a ``sql`` step connects (docs/security.md "Database connections"): from the asset's
validated fields only, never a DSN string, and nothing from the worker's environment.

libpq fills every connection keyword a program does not give from a ``PG*`` environment
variable (``PGHOST``, ``PGPASSWORD``, ``PGSSLCERT`` ...), then from a service file
(``PGSERVICE``), ``~/.pgpass`` and ``~/.postgresql/``. The worker's environment is the
product's, not the step's: an operator's ``PGPASSWORD`` would be sent to whatever server a
tenant's asset names. So every keyword libpq reads from the environment is given here
explicitly (``tests/execution/runners/test_sql_connect.py`` lists libpq's own keywords and
fails when a new one is not), and the files are pointed at a path that does not exist. The
one exception is ``service``: naming none would make libpq look for a service called ""; a
service from ``PGSERVICE`` can only fill keywords not given, and none is left.
"""

from __future__ import annotations

from typing import Any

import psycopg2

from execution.models.assets import DATABASE_SSL_MODES, database_name_problem
from execution.outbound.addresses import host_problem, port_problem
from execution.runners.base import ResolvedTarget, StepContext
from execution.runners.support import step_check_host

# A path that never exists: libpq reads no password, certificate or key file of the worker.
NO_FILE = "/nonexistent/opsconductor-step-connection"
DEFAULT_PORT = 5432
DEFAULT_SSL_MODE = "prefer"


class ConnectRefused(ValueError):
    """The asset's fields do not make a connection (one line, for the step's error)."""


def connect_params(
    target: ResolvedTarget,
    *,
    password: str,
    database: str,
    connect_timeout: int,
    options: str = "",
) -> dict[str, Any]:
    """Every libpq keyword of the step's connection, from validated fields (raises
    ConnectRefused naming the field that is not valid)."""
    host = target.address or target.hostname
    problem = host_problem(host)
    if problem:
        raise ConnectRefused(f"asset address {host!r} {problem}")
    port = target.port or DEFAULT_PORT
    if port_problem(port):
        raise ConnectRefused(f"asset port {port!r} {port_problem(port)}")
    problem = database_name_problem(database)
    if problem:
        raise ConnectRefused(f"database name {database!r} {problem}")
    user = target.username
    if not user:
        # Without one libpq takes PGUSER or the worker's own login name.
        raise ConnectRefused("the database asset has no username")
    ssl_mode = str((target.metadata or {}).get("sslmode") or DEFAULT_SSL_MODE)
    if ssl_mode not in DATABASE_SSL_MODES:
        raise ConnectRefused(f"metadata.sslmode must be one of {', '.join(DATABASE_SSL_MODES)}")
    return {
        "host": host,
        "hostaddr": "",  # connect() sets the checked address; never PGHOSTADDR
        "port": port,
        "dbname": database,
        "user": user,
        # Given even when empty: an absent password is PGPASSWORD's (an empty one is ignored,
        # and passfile below has no file to read).
        "password": password,
        "passfile": NO_FILE,
        "connect_timeout": connect_timeout,
        "options": options,
        "application_name": "opsconductor-sql-step",
        "fallback_application_name": "opsconductor-sql-step",
        "client_encoding": "UTF8",
        "target_session_attrs": "any",
        "load_balance_hosts": "disable",
        "channel_binding": "prefer",
        "sslmode": ssl_mode,
        # verify-full checks the server's certificate against the system's CAs and its name;
        # nothing else reads a root certificate (none of ~/.postgresql/root.crt either).
        "sslrootcert": "system" if ssl_mode == "verify-full" else NO_FILE,
        "sslcrl": "",
        "sslcrldir": "",
        # Never present a client certificate: the worker's (~/.postgresql/postgresql.crt, or
        # PGSSLCERT for the product's own database) is not the asset's.
        "sslcertmode": "disable",
        "sslcert": NO_FILE,
        "sslkey": NO_FILE,
        "sslnegotiation": "postgres",
        "sslcompression": "0",
        "sslsni": "1",
        "ssl_min_protocol_version": "TLSv1.2",
        "ssl_max_protocol_version": "",
        "requirepeer": "",
        # No Kerberos: a ticket in the worker's credential cache is the worker's identity.
        "gssencmode": "disable",
        "require_auth": "!gss,!sspi",
        "krbsrvname": "postgres",
        "gsslib": "",
        "gssdelegation": "0",
    }


def connect(ctx: StepContext, target: ResolvedTarget, **kwargs: Any) -> Any:
    """A psycopg2 connection made from :func:`connect_params` (keyword arguments, which
    psycopg2 quotes; never a DSN string) to the address the outbound guard checked
    (``hostaddr``; ``host`` stays the name, for ``verify-full``). Raises ConnectRefused,
    OutboundRefused or OutboundUnresolved before anything is sent."""
    params = connect_params(target, **kwargs)
    checked = step_check_host(ctx, params["host"], params["port"], scheme="postgresql", listed=True)
    params["hostaddr"] = checked.ip
    return psycopg2.connect(**params)
