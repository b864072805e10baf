"""The execution page's grid of a fleet step's targets (docs/fleet.md "The execution page").

One cell per target, failed first, then running, then waiting, then the rest in target
order; a count per status. The page renders every cell once; its script
(``execution/static/execution/fleet.js``) then changes cells in place from the socket's
``target_*`` events and from ``fleet_statuses`` (a target's start has no event: the script
asks for the statuses while the step runs).
"""

from __future__ import annotations

import json
from typing import Any

from execution.enums import TargetStatus
from execution.models import Execution, StepTarget

# Where a status sorts in the grid; every other status after these (REST_RANK), by target
# index. The page hands this table to the script, which sorts live changes by it (one
# definition; the script's rest rank is the table's length too).
GRID_RANK: dict[str, int] = {
    TargetStatus.FAILED: 0,
    TargetStatus.TIMEOUT: 1,
    TargetStatus.RUNNING: 2,
    TargetStatus.WAITING: 3,  # put aside for a busy lock: the holder is on its record
}
REST_RANK = len(GRID_RANK)
# The counts (and the filter's buttons) in this order.
COUNT_ORDER = (
    TargetStatus.FAILED,
    TargetStatus.TIMEOUT,
    TargetStatus.RUNNING,
    TargetStatus.WAITING,
    TargetStatus.PENDING,
    TargetStatus.COMPLETED,
    TargetStatus.CANCELLED,
    TargetStatus.SKIPPED,
)


def fleet_step_names(execution: Execution) -> dict[int, str]:
    """Index -> name of the plan's fleet steps (those naming ``targets``)."""
    steps = (execution.plan_snapshot or {}).get("steps") or []
    return {
        i: str(step.get("name") or f"step {i}")
        for i, step in enumerate(steps)
        if isinstance(step, dict) and isinstance(step.get("targets"), list)
    }


def cell_order(status: str, index: int, total: int) -> int:
    """The CSS ``order`` of a cell: its status's rank, then its target index."""
    return GRID_RANK.get(status, REST_RANK) * total + index


def fleet_grids(execution: Execution, step_statuses: dict[int, str]) -> list[dict[str, Any]]:
    """Per fleet step: its cells (sorted as drawn) and counts. One query, whatever the number
    of targets (the outputs are not read: a click fetches one target's)."""
    names = fleet_step_names(execution)
    if not names:
        return []
    cells: dict[int, list[dict[str, Any]]] = {i: [] for i in names}
    rows = (
        StepTarget.objects.filter(execution_id=execution.execution_id)
        .order_by("step_index", "target_index")
        .values_list("step_index", "target_index", "hostname", "asset_id", "status")
    )
    for step_index, index, hostname, asset_id, status in rows:
        if step_index in cells:
            cells[step_index].append({"index": index, "hostname": hostname or asset_id, "status": status})
    grids = []
    for step_index, step_cells in cells.items():
        total = len(step_cells)
        counts = dict.fromkeys(COUNT_ORDER, 0)
        for cell in step_cells:
            counts[cell["status"]] = counts.get(cell["status"], 0) + 1
            cell["order"] = cell_order(cell["status"], cell["index"], total)
        step_cells.sort(key=lambda c: c["order"])
        grids.append(
            {
                "index": step_index,
                "name": names[step_index],
                "total": total,
                "running": step_statuses.get(step_index) == "running",
                "cells": step_cells,
                "counts": [{"status": s, "n": n} for s, n in counts.items()],
                "ranks": json.dumps({str(s): r for s, r in GRID_RANK.items()}),
            }
        )
    return grids


def fleet_statuses(execution: Execution, step_index: int) -> list[str] | None:
    """Every target's status of a fleet step, by target index (None: not a fleet step)."""
    if step_index not in fleet_step_names(execution):
        return None
    return list(
        StepTarget.objects.filter(execution_id=execution.execution_id, step_index=step_index)
        .order_by("target_index")
        .values_list("status", flat=True)
    )
