"""Connecting to what the guard checked (docs/security.md "Outbound connections").

- requests: :class:`GuardedAdapter` asks its ``check`` for every request (with requests' own
  reading of the URL) and connects to the checked address, keeping the name for the Host
  header, TLS SNI and certificate verification. :func:`guarded_session` mounts it for http
  and https and ignores the environment (``HTTP_PROXY`` would send the request to a proxy
  that resolves the name again; ``~/.netrc`` would add the worker's credentials) except the
  operator's CA bundle (:func:`tls_verify`).
- TCP (probes, ssh's ``sock=``, syslog): :func:`tcp_connect` to the checked address.
Redirects are never followed by the callers; a request to another host through a session
pinned to one checked destination is refused (:func:`pinned`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from execution.outbound.guard import DEFAULT_PORTS, Checked, OutboundRefused, check_host

# (scheme, host, port) as requests connects -> where to connect, or OutboundRefused.
Check = Callable[[str, str, int], Checked]
_CHECKED = "_opsconductor_checked"


def host_header(checked: Checked) -> str:
    host = f"[{checked.host}]" if ":" in checked.host else checked.host
    return host if DEFAULT_PORTS.get(checked.scheme) == checked.port else f"{host}:{checked.port}"


class GuardedAdapter(HTTPAdapter):
    def __init__(self, check: Check, **kwargs: Any) -> None:
        self._check = check
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(  # type: ignore[override]
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, requests_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs: dict[str, Any] = dict(requests_kwargs)
        scheme = str(host_params["scheme"])
        port = int(host_params.get("port") or DEFAULT_PORTS.get(scheme, 0))
        checked = self._check(scheme, str(host_params.get("host") or ""), port)
        setattr(request, _CHECKED, checked)
        if scheme == "https":
            # The certificate is verified for the name; the connection goes to the address.
            pool_kwargs = {**pool_kwargs, "server_hostname": checked.host, "assert_hostname": checked.host}
        return {**host_params, "host": checked.ip, "port": port}, pool_kwargs

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        super().add_headers(request, **kwargs)
        checked: Checked | None = getattr(request, _CHECKED, None)
        if checked is not None:  # (set just before, in the same send())
            request.headers["Host"] = host_header(checked)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("proxies"):
            # Through a proxy the connection would go where the proxy resolves the name.
            raise OutboundRefused("outbound requests are not sent through a proxy")
        return super().send(request, *args, **kwargs)


def guarded_session(check: Check, **adapter_options: Any) -> requests.Session:
    """A session whose every request passes ``check`` and goes to the checked address
    (``adapter_options``: HTTPAdapter's, e.g. ``max_retries``)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = tls_verify(True)
    adapter = GuardedAdapter(check, **adapter_options)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def tls_verify(verify: bool) -> bool | str:
    """requests' ``verify`` for a guarded session: the operator's CA bundle
    (``OUTBOUND_CA_BUNDLE``, from ``REQUESTS_CA_BUNDLE``, which ``trust_env = False`` stops
    requests from reading by itself) when verifying, else False."""
    if not verify:
        return False
    return settings.OUTBOUND_CA_BUNDLE or True


def pinned(checked: Checked) -> Check:
    """A check that lets through the one destination already checked (no second
    resolution) and refuses any other."""

    def check(scheme: str, host: str, port: int) -> Checked:
        if (scheme, host.lower().rstrip("."), port) != (checked.scheme, checked.host, checked.port):
            raise OutboundRefused(f"{scheme}://{host}:{port} is not the destination that was checked")
        return checked

    return check


def operator_check(scheme: str, host: str, port: int) -> Checked:
    """The check of a destination the operator configured (service URLs, sinks)."""
    return check_host(host, port, tenant=None, scheme=scheme, operator=True)


def tcp_connect(checked: Checked, *, timeout: float) -> socket.socket:
    """A TCP connection to the checked address (never a new resolution of the name)."""
    return socket.create_connection((checked.ip, checked.port), timeout=timeout)
