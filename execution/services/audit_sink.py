"""Shipping the sealed audit chain to the operator's SIEM: a webhook and/or syslog (docs/audit.md).

Each sink has a stored cursor (``audit_cursors``, ``sink:<name>``): the id of the last chain
entry it accepted. A run sends the entries after it, in id order, a batch at a time, and
moves the cursor only after the receiver accepted the batch (a 2xx, or syslog's TCP stream
taking every byte) in the same transaction that holds the cursor row. A crash in between
sends the batch again: delivery is at least once, and each line carries its tenant and seq
so a receiver can drop what it already has.

The sinks are operator settings (like the OTLP endpoint), not a tenant's outbound calls: the
outbound guard counts them as allow-listed, but they still go to the address it checked,
follow no redirect and never reach the product's own ports (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import connection, transaction

from execution.models import Tenant
from execution.models.audit import AuditChainEntry
from execution.outbound import (
    OutboundRefused,
    OutboundUnresolved,
    check_host,
    guarded_session,
    operator_check,
    tcp_connect,
)
from execution.services.audit_export import chain_records

logger = logging.getLogger(__name__)
SYSLOG_PRI = 13 * 8 + 6  # facility 13 (log audit), severity 6 (informational)


class SinkFailed(Exception):
    """The receiver did not take the batch; the cursor stays, the next run sends it again."""


def _lines(entries: list[AuditChainEntry]) -> list[str]:
    records = chain_records(entries)
    slugs = dict(Tenant.objects.filter(pk__in={e.tenant_key for e in entries}).values_list("pk", "slug"))
    return [
        json.dumps(
            {
                "tenant": slugs.get(e.tenant_key, ""),
                "seq": e.seq,
                "source": e.source,
                "id": e.source_id,
                "created_at": e.created_at.isoformat(),
                "record": records.get((e.source, e.source_id)),
                "pruned_by": e.pruned_by,
                "row_hash": e.row_hash,
                "chain_hash": e.chain_hash,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        for e in entries
    ]


def send_webhook(lines: list[str]) -> None:
    body = ("\n".join(lines) + "\n").encode()
    headers = {"Content-Type": "application/x-ndjson", "User-Agent": "opsconductor-audit"}
    if settings.AUDIT_SINK_WEBHOOK_SECRET:
        digest = hmac.new(settings.AUDIT_SINK_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers["X-OpsConductor-Signature"] = f"sha256={digest}"
    # The operator's URL, through the outbound guard all the same: to the address it checked,
    # no redirect followed, never the product's own ports (docs/security.md).
    try:
        with guarded_session(operator_check) as session:
            response = session.post(
                str(settings.AUDIT_SINK_WEBHOOK_URL),
                data=body,
                headers=headers,
                timeout=settings.AUDIT_SINK_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
    except requests.RequestException as exc:
        raise SinkFailed(f"webhook unreachable: {type(exc).__name__}") from None
    except (OutboundRefused, OutboundUnresolved) as exc:
        raise SinkFailed(f"webhook not sent: {exc}") from None
    if not 200 <= response.status_code < 300:
        # Never the response body: it is the receiver's, and may echo anything.
        raise SinkFailed(f"webhook answered {response.status_code}")


def send_syslog(lines: list[str]) -> None:
    """RFC 5424 messages over TCP with octet-counting framing (RFC 6587)."""
    target = urlsplit(str(settings.AUDIT_SINK_SYSLOG))
    host = socket.gethostname()
    frames = []
    for line in lines:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        message = f"<{SYSLOG_PRI}>1 {stamp} {host} opsconductor - audit - {line}".encode()
        frames.append(f"{len(message)} ".encode() + message)
    try:
        checked = check_host(
            target.hostname or "", target.port or 601, tenant=None, scheme="syslog", operator=True
        )
    except (OutboundRefused, OutboundUnresolved) as exc:
        raise SinkFailed(f"syslog not sent: {exc}") from None
    try:
        with tcp_connect(checked, timeout=settings.AUDIT_SINK_TIMEOUT_SECONDS) as sock:
            sock.sendall(b"".join(frames))
            sock.shutdown(socket.SHUT_WR)
            # The receiver closes its side once it has read everything up to our end of
            # stream: only then was the batch taken.
            while sock.recv(4096):
                pass
    except OSError as exc:
        raise SinkFailed(f"syslog unreachable: {type(exc).__name__}") from None


def configured_sinks() -> dict[str, Callable[[list[str]], None]]:
    sinks: dict[str, Callable[[list[str]], None]] = {}
    if settings.AUDIT_SINK_WEBHOOK_URL:
        sinks["webhook"] = send_webhook
    if settings.AUDIT_SINK_SYSLOG:
        sinks["syslog"] = send_syslog
    return sinks


def _ship_batch(name: str, send: Callable[[list[str]], None], batch_size: int) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_cursors (name, position, updated_at) VALUES (%s, 0, now()) "
            "ON CONFLICT DO NOTHING",
            [f"sink:{name}"],
        )
        # The cursor row locked: two shippers never send the same batch at once.
        cursor.execute("SELECT position FROM audit_cursors WHERE name = %s FOR UPDATE", [f"sink:{name}"])
        position = int(cursor.fetchone()[0])
        entries = list(AuditChainEntry.objects.filter(id__gt=position).order_by("id")[:batch_size])
        if not entries:
            return 0
        send(_lines(entries))
        cursor.execute(
            "UPDATE audit_cursors SET position = %s, updated_at = now() WHERE name = %s",
            [entries[-1].pk, f"sink:{name}"],
        )
        return len(entries)


def audit_ship(*, batch_size: int | None = None) -> dict[str, Any]:
    """Send every sealed entry each configured sink has not taken yet; per sink, the number
    delivered or the reason it stopped."""
    batch = batch_size or settings.AUDIT_SINK_BATCH_SIZE
    outcome: dict[str, Any] = {}
    for name, send in configured_sinks().items():
        delivered = 0
        try:
            while True:
                sent = _ship_batch(name, send, batch)
                delivered += sent
                if sent < batch:
                    break
            outcome[name] = delivered
        except SinkFailed as exc:
            logger.warning("audit sink %s: %s (%d delivered, retried next run)", name, exc, delivered)
            outcome[name] = f"{delivered} delivered, then {exc}"
    return outcome
