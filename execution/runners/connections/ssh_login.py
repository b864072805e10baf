"""Logging in to an ``ssh`` asset (paramiko): the outbound guard's check of the target, host keys,
the key or password, and a TCP connection without Nagle's and the delayed ACK's stalls.

Host keys: pinned when the asset's metadata has ``host_key`` (``"<type> <base64>"``, e.g. the
line ``ssh-keyscan`` prints); otherwise *accept-new* in a tenant-scoped known_hosts file
(``<SSH_KNOWN_HOSTS_DIR>/<tenant>/known_hosts``): the first key seen for a host is recorded,
a different key later is refused (``BadHostKeyException``).
"""

from __future__ import annotations

import base64
import io
import socket
from pathlib import Path
from typing import Any

import paramiko  # type: ignore[import-untyped]
from django.conf import settings

from execution.outbound import Checked, tcp_connect
from execution.outbound.guard import OutboundUnresolved
from execution.runners.base import StepContext, TargetUnreachable
from execution.runners.support import step_check_host

_KEY_CLASSES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def _load_private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    last: Exception | None = None
    for cls in _KEY_CLASSES:
        try:
            return cls.from_private_key(io.StringIO(text), password=passphrase or None)
        except (paramiko.SSHException, ValueError) as exc:
            last = exc
    raise paramiko.SSHException(f"unsupported or undecryptable private key ({type(last).__name__})")


def known_hosts_path(tenant_slug: str) -> Path:
    return Path(str(settings.SSH_KNOWN_HOSTS_DIR)) / tenant_slug / "known_hosts"


class _AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """Record an unknown host's key in the tenant's known_hosts (trust on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


def connect_timeout(ctx: StepContext) -> float:
    return min(max(ctx.timeout_seconds, 1.0), 15.0)


def check_target(ctx: StepContext) -> Checked:
    """The outbound guard's answer for ctx.target, asked before every step, a reused
    connection's too: OutboundRefused when it refuses, TargetUnreachable when the name does
    not resolve (nothing was sent either way)."""
    target = ctx.target
    if target is None:
        raise ValueError("an ssh step needs a target asset")
    host, port = target.address or target.hostname, target.port or 22
    try:
        return step_check_host(ctx, host, port, scheme="ssh", listed=True)
    except OutboundUnresolved as exc:
        raise TargetUnreachable(str(exc)) from None


class _PromptSocket:
    """The TCP connection paramiko talks over, with Nagle off and every ACK sent at once.

    sshd writes several of its answers in two segments and, but for interactive (tty)
    sessions, keeps Nagle's algorithm on: its second segment waits for this side's ACK of the
    first, which Linux delays by up to 40 ms. Each exchange of a login and of a session's start
    stalled so: a login plus ``true`` took 120 ms on loopback instead of 27 ms. TCP_NODELAY
    sends this side's messages at once; TCP_QUICKACK is one-shot on Linux (the kernel goes back
    to delayed ACKs), so it is asked again before every read. Everything else is the socket's.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def recv(self, size: int) -> bytes:
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return self._sock.recv(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def ssh_connect(
    ctx: StepContext, *, timeout: float | None = None, checked: Checked | None = None
) -> paramiko.SSHClient:
    """An authenticated SSHClient to ctx.target (host key policy as in the module docstring),
    over a TCP connection to the address the outbound guard checked (``checked``, else asked
    here, see check_target); TargetUnreachable when the TCP connection fails (nothing was sent)."""
    checked = checked or check_target(ctx)
    target = ctx.target
    assert target is not None  # _check refused a step without one
    host = target.address or target.hostname
    port = target.port or 22
    timeout = timeout or connect_timeout(ctx)
    client = paramiko.SSHClient()
    host_id = host if port == 22 else f"[{host}]:{port}"
    pinned = (target.metadata or {}).get("host_key")
    if pinned:
        key_type, _, key_b64 = str(pinned).strip().partition(" ")
        key = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64.split()[0]))
        client.get_host_keys().add(host_id, key_type, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        path = known_hosts_path(ctx.tenant_slug)
        if path.exists():
            client.load_system_host_keys(str(path))
        client.set_missing_host_key_policy(_AcceptNewPolicy(path))
    credential = ctx.credential or {}
    pkey = None
    if credential.get("private_key"):
        pkey = _load_private_key(credential["private_key"], credential.get("passphrase"))
    try:
        raw = tcp_connect(checked, timeout=timeout)
    except OSError as exc:  # refused, timed out, no route
        raise TargetUnreachable(f"tcp connect to {checked.ip}:{checked.port} failed: {exc}") from None
    try:
        sock = _PromptSocket(raw)
        client.connect(
            hostname=host,  # the host key is looked up (and recorded) under the asset's name
            port=port,
            sock=sock,
            username=target.username or credential.get("username") or None,
            password=credential.get("password") if pkey is None else None,
            pkey=pkey,
            timeout=timeout,
            banner_timeout=15,
            auth_timeout=15,
            allow_agent=False,
            look_for_keys=False,
        )
    except BaseException:
        client.close()
        raw.close()
        raise
    return client
