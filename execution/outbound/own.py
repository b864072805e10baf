"""The product's own ports, which no sender reaches unless an opening names the port
(docs/security.md "Outbound connections"): this machine's web server
(opsconductor/listening.py), the database and the Redis of the settings.

What it cannot know: web processes on other machines behind a load balancer. Keep their
addresses out of the opened networks (the guard refuses private addresses by default).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil
from django.conf import settings

from execution.outbound.addresses import IPAddress, embedded_ipv4, ip_literal
from opsconductor.listening import web_listening

# Resolved endpoints are kept this long (a worker checks many connections a minute).
CACHE_SECONDS = 60.0
_cache: dict[tuple[object, ...], tuple[float, list[OwnEndpoint]]] = {}


@dataclass(frozen=True)
class OwnEndpoint:
    name: str
    port: int
    addresses: frozenset[IPAddress]
    # Listening on every address of this machine (0.0.0.0, ::).
    every_local_address: bool = False


def _resolve(host: str) -> frozenset[IPAddress]:
    literal = ip_literal(host)
    if literal is not None:
        return frozenset({literal})
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset()
    return frozenset(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)


def local_addresses() -> frozenset[IPAddress]:
    """The addresses of this machine's interfaces."""
    found: set[IPAddress] = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                literal = ip_literal(address.address.split("%")[0])
                if literal is not None:
                    found.add(literal)
    return frozenset(found)


def _endpoints() -> list[OwnEndpoint]:
    listening = web_listening()
    database = settings.DATABASES["default"]
    redis = urlsplit(settings.REDIS_URL) if settings.REDIS_URL else None
    key = (listening, database.get("HOST"), database.get("PORT"), settings.REDIS_URL)
    cached = _cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    endpoints = [
        OwnEndpoint(
            name="the product's own web port",
            port=listening.port,
            addresses=frozenset() if listening.every_address else _resolve(listening.host),
            every_local_address=listening.every_address,
        )
    ]
    db_host = str(database.get("HOST") or "")
    if db_host and not db_host.startswith("/"):  # a socket directory has no port to reach
        endpoints.append(
            OwnEndpoint(
                name="the product's own database port",
                port=int(database.get("PORT") or 5432),
                addresses=_resolve(db_host),
            )
        )
    if redis is not None and redis.hostname:
        endpoints.append(
            OwnEndpoint(
                name="the product's own Redis port",
                port=redis.port or 6379,
                addresses=_resolve(redis.hostname),
            )
        )
    _cache.clear()
    _cache[key] = (time.monotonic(), endpoints)
    return endpoints


def own_endpoint(ip: IPAddress, port: int) -> str | None:
    """The name of the product's own endpoint at ``ip``:``port``, or None. An IPv4-mapped
    address is its IPv4 address; the unspecified address (a connection to 0.0.0.0 reaches
    this machine) is every address of this machine."""
    mapped = embedded_ipv4(ip)
    candidates = {ip} if mapped is None else {ip, mapped}
    for endpoint in _endpoints():
        if endpoint.port != port:
            continue
        if candidates & endpoint.addresses:
            return endpoint.name
        if any(c.is_unspecified for c in candidates) or (
            endpoint.every_local_address and any(c.is_loopback or c in local_addresses() for c in candidates)
        ):
            return endpoint.name
    return None
