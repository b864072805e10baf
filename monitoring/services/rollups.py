"""``rollups_fold``: move the deltas the triggers recorded into the rollups, and delete the
minute and hour rollups no window reads any more (every minute, the ``monitoring: fold
rollups`` schedule). All-time rows are never deleted: they are the counters.

Folding changes no figure (readers add rollups and deltas); it keeps the deltas few, so
reads stay cheap. Two folds at once: the second does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from monitoring.selectors.rollups import HOURS_KEPT, MINUTES_KEPT

# pg_try_advisory_xact_lock(LOCK_CLASS, 0): the fold.
LOCK_CLASS = 0x524F4C


@dataclass
class FoldResult:
    folded: int  # delta rows moved into the rollups
    trimmed: int  # minute and hour rollups deleted
    skipped: bool = False  # another fold was running


def rollups_fold(*, now: datetime | None = None) -> FoldResult:
    """Fold the deltas; delete minute rollups older than MINUTES_KEPT, hour ones older than
    HOURS_KEPT."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, 0)", [LOCK_CLASS])
        if not cursor.fetchone()[0]:
            return FoldResult(folded=0, trimmed=0, skipped=True)
        cursor.execute("SELECT monitoring_rollups_fold()")
        folded = int(cursor.fetchone()[0])
        cursor.execute(
            "DELETE FROM monitoring_rollups "
            "WHERE (grain = 'm' AND period < %s) OR (grain = 'h' AND period < %s)",
            [now - MINUTES_KEPT, now - HOURS_KEPT],
        )
        return FoldResult(folded=folded, trimmed=int(cursor.rowcount))
