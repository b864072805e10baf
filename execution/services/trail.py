"""The audit trail's one escape: deleting events is for retention only (docs/security.md).

A trigger (migration 0007) refuses every UPDATE of ``execution_events`` and every DELETE
unless the transaction has run ``SET LOCAL opsconductor.retention = 'on'``. Pruning (and a
benchmark cleaning up after itself) deletes inside :func:`trail_delete_allowed`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def trail_delete_allowed() -> Iterator[None]:
    """A transaction in which finished executions' events may be deleted (and only that one:
    ``SET LOCAL`` ends with it)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL opsconductor.retention = 'on'")
        yield
