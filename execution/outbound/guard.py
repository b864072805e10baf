"""The one outbound guard (docs/security.md "Outbound connections"): every connection the
product opens on behalf of a tenant or its operator is checked here first, and then made to
the address checked here.

``check_url`` reads a URL the way requests sends it (requests' own preparation and pool
key, so ``http://127.0.0.1\\@allowed.example/`` is 127.0.0.1); ``check_host`` checks a host
and port (ssh, sql, TCP probes, syslog). Both:
1. refuse what is not one host (``host_problem``) or a scheme the sender does not speak;
2. unless the operator configured the destination or it is the tenant's own asset, refuse a
   host that is on no allow-list pattern (the operator's and the tenant's);
3. resolve the name once, and refuse when any address it resolves to is special (loopback,
   link-local, private, metadata ...) and not opened by the operator or a superuser, or is
   one of the product's own ports not opened with that port;
4. answer :class:`Checked` with the address the caller then connects to (the transport
   adapter for requests, ``sock=`` for paramiko, ``hostaddr=`` for libpq).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from execution.errors import DomainError
from execution.outbound.addresses import IPAddress, host_problem, ip_literal, port_problem, special_kind
from execution.outbound.own import own_endpoint
from execution.outbound.rules import OutboundRules, outbound_rules

HTTP_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
HOW_TO_OPEN = (
    "a superuser opens it with an outbound rule that opens special addresses, "
    "or the operator in OUTBOUND_OPEN_NETWORKS"
)


class OutboundRefused(DomainError):
    """The guard refused the destination: nothing was sent (retrying cannot help)."""


class OutboundUnresolved(DomainError):
    """The host name does not resolve (now): nothing was sent (a retry may help)."""


@dataclass(frozen=True)
class Checked:
    """What was checked, and where to connect: ``ip``:``port``, speaking to ``host`` (Host
    header, TLS server name and certificate, ssh known_hosts)."""

    scheme: str
    host: str
    ip: str
    port: int


# Only for its parse: requests' pool key of a prepared request is the host it connects to.
_REQUESTS = HTTPAdapter()


def requests_destination(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) that requests connects to for ``url`` (OutboundRefused when
    requests cannot send it)."""
    try:
        prepared = requests.Request("GET", url).prepare()
        host_params, _ = _REQUESTS.build_connection_pool_key_attributes(prepared, verify=True)
    except (requests.RequestException, ValueError, UnicodeError) as exc:
        raise OutboundRefused(f"url {url!r} is not a URL requests can send ({type(exc).__name__})") from None
    scheme = str(host_params.get("scheme") or "")
    if "@" in urlsplit(prepared.url or "").netloc:
        # Credentials in a URL end up in logs and plans; and "allowed@127.0.0.1" misleads.
        raise OutboundRefused(f"url {url!r} holds user information (user@host): put credentials in a header")
    port = host_params.get("port") or DEFAULT_PORTS.get(scheme, 0)
    return scheme, str(host_params.get("host") or ""), int(port)


def _resolve(host: str, port: int) -> list[IPAddress]:
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OutboundUnresolved(f"host {host!r} does not resolve ({exc})") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise OutboundUnresolved(f"host {host!r} resolves to no address")
    return found


def _address_refusal(
    ip: IPAddress, port: int, *, shown: str, rules: OutboundRules, special_allowed: bool
) -> str | None:
    kind = special_kind(ip)
    openings = rules.openings
    if kind is not None and not special_allowed:
        # Metadata: only an opening of that very address; anything else special: any opening.
        opened = any(
            (o.names(ip, port) if kind.startswith("cloud metadata") else o.covers(ip, port)) for o in openings
        )
        if not opened:
            return f"{shown} is a {kind} address: refused unless {HOW_TO_OPEN}"
    own = own_endpoint(ip, port)
    if own is not None and not any(o.covers(ip, port) and o.port == port for o in openings):
        return f"{shown}:{port} is {own}: refused unless an opening names that port"
    return None


def _host_name(host: str) -> str:
    literal = ip_literal(host)
    return str(literal) if literal is not None else host.lower().rstrip(".")


def _unlisted(scheme: str, name: str, *, tenant: str | None, environment: str) -> str:
    where = f"tenant {tenant!r}{' in ' + environment if environment else ''}"
    return (
        f"{scheme} host {name!r} is not on the outbound allow-list of {where} "
        "(an outbound allow rule in the admin, or HTTP_OUTBOUND_ALLOWLIST)"
    )


def check_host(
    host: str,
    port: int,
    *,
    tenant: str | None,
    environment: str = "",
    scheme: str = "tcp",
    listed: bool = False,
    operator: bool = False,
    rules: OutboundRules | None = None,
) -> Checked:
    """Check one host and port; raise OutboundRefused (or OutboundUnresolved) or answer
    where to connect.

    ``listed``: the host is the tenant's own asset (its inventory lists it), so the host
    patterns are not asked; the addresses are. ``operator``: the operator configured the
    destination (a service URL, a sink): listed and special addresses allowed, the
    product's own ports still refused unless opened with the port. ``rules``: the tenant's
    rules in ``environment`` already read (a fleet step reads them once for its targets);
    None: read here.
    """
    problem = host_problem(host)
    if problem:
        raise OutboundRefused(f"{scheme} host {host!r} {problem}")
    if port_problem(port):
        raise OutboundRefused(f"{scheme} port {port!r} {port_problem(port)}")
    name = _host_name(host)
    if rules is None or operator:
        rules = outbound_rules(tenant=None if operator else tenant, environment=environment)
    if not (listed or operator or rules.lists(name)):
        raise OutboundRefused(_unlisted(scheme, name, tenant=tenant, environment=environment))
    addresses = _resolve(name, port)
    for ip in addresses:
        shown = name if ip_literal(host) is not None else f"{name} (resolved)"
        refusal = _address_refusal(ip, port, shown=shown, rules=rules, special_allowed=operator)
        if refusal:
            raise OutboundRefused(f"{scheme} host {refusal}")
    return Checked(scheme=scheme, host=name, ip=str(addresses[0]), port=port)


def _url_destination(url: str, schemes: tuple[str, ...]) -> tuple[str, str, int]:
    scheme, host, port = requests_destination(url)
    if scheme not in schemes:
        raise OutboundRefused(f"url scheme {scheme or '(none)'!r} is not allowed ({', '.join(schemes)})")
    if not host:
        raise OutboundRefused(f"url {url!r} names no host")
    problem = host_problem(host)
    if problem:
        raise OutboundRefused(f"{scheme} host {host!r} {problem}")
    return scheme, host, port


def url_problem(url: str, *, schemes: tuple[str, ...] = HTTP_SCHEMES) -> str | None:
    """Why ``url`` can never pass the guard (its form: scheme, one host, no user
    information), or None. No resolution and no allow-list: those are decided when it is
    sent. For the doors that take a URL (a step's params, a webhook subscription)."""
    try:
        _url_destination(url, schemes)
    except OutboundRefused as exc:
        return str(exc)
    return None


def url_unlisted(url: str, *, tenant: str, environment: str = "") -> str | None:
    """Why the host of a well-formed ``url`` is not on ``tenant``'s allow-list in
    ``environment``, or None. No resolution: for a door that stores a URL to send later
    (a webhook subscription), so it can say at once that every send would be refused."""
    scheme, host, _ = _url_destination(url, HTTP_SCHEMES)
    name = _host_name(host)
    if outbound_rules(tenant=tenant, environment=environment).lists(name):
        return None
    return _unlisted(scheme, name, tenant=tenant, environment=environment)


def check_url(
    url: str,
    *,
    tenant: str | None,
    environment: str = "",
    schemes: tuple[str, ...] = HTTP_SCHEMES,
    operator: bool = False,
) -> Checked:
    """Check a URL as requests will send it (see :func:`check_host` for the rest)."""
    scheme, host, port = _url_destination(url, schemes)
    return check_host(host, port, tenant=tenant, environment=environment, scheme=scheme, operator=operator)
