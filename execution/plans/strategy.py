"""A fleet step's strategy (docs/fleet.md): how many targets at once, in which batches, how
many failures stop it, the pause between batches.

``concurrency`` (targets at once, 1..1000), ``batch`` (a number >= 1 or a percentage
``"25%"`` of the step's targets), ``max_failures`` (a number >= 0 or a percentage; once
more targets than that have failed no new target starts), ``pause_seconds`` (0..3600).
Django-free: the settings module checks its defaults with the same parser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

STRATEGY_KEYS = ("concurrency", "batch", "max_failures", "pause_seconds")
MAX_CONCURRENCY = 1000
MAX_PAUSE_SECONDS = 3600


def amount_problem(value: Any, *, minimum: int) -> str | None:
    """None when ``value`` is an integer >= minimum or a percentage text ``"N%"`` (N in
    minimum..100, N may be a decimal), else why not."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if value >= minimum else f"must be >= {minimum}"
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = float(value[:-1])
        except ValueError:
            return "must be a number or a percentage such as '25%'"
        if math.isfinite(percent) and minimum <= percent <= 100 and (percent > 0 or minimum == 0):
            return None
        return f"the percentage must be in {minimum}..100"
    return "must be a number or a percentage such as '25%'"


def amount_of(value: int | str, total: int, *, at_least: int) -> int:
    """``value`` (number or percentage) as a count of ``total`` targets: a percentage of a
    batch rounds up (25 % of 30 is 8), of a failure budget down (10 % of 15 is 1)."""
    if isinstance(value, str):
        share = total * float(value[:-1]) / 100
        count = math.ceil(share - 1e-9) if at_least else math.floor(share + 1e-9)
    else:
        count = value
    return max(at_least, count)


def strategy_problems(value: Any) -> list[tuple[str, str]]:
    """(key, why) for each problem of a step's ``strategy`` object."""
    if not isinstance(value, dict):
        return [("", "must be an object")]
    problems = [(str(key), "unknown field") for key in value if key not in STRATEGY_KEYS]
    if "concurrency" in value:
        concurrency = value["concurrency"]
        if (
            not isinstance(concurrency, int)
            or isinstance(concurrency, bool)
            or not 1 <= concurrency <= MAX_CONCURRENCY
        ):
            problems.append(("concurrency", f"must be an integer 1..{MAX_CONCURRENCY}"))
    for key, minimum in (("batch", 1), ("max_failures", 0)):
        if key in value:
            problem = amount_problem(value[key], minimum=minimum)
            if problem:
                problems.append((key, problem))
    if "pause_seconds" in value:
        pause = value["pause_seconds"]
        if (
            not isinstance(pause, (int, float))
            or isinstance(pause, bool)
            or not 0 <= pause <= MAX_PAUSE_SECONDS
        ):
            problems.append(("pause_seconds", f"must be a number of seconds 0..{MAX_PAUSE_SECONDS}"))
    return problems


@dataclass(frozen=True)
class Strategy:
    """A step's strategy for its ``total`` targets, in counts."""

    concurrency: int
    batch_size: int
    max_failures: int
    pause_seconds: float
    total: int

    @classmethod
    def of(cls, spec: dict[str, Any], total: int) -> Strategy:
        """``spec`` is a complete strategy (the snapshot's, defaults filled at submission)."""
        return cls(
            concurrency=int(spec["concurrency"]),
            batch_size=min(max(total, 1), amount_of(spec["batch"], total, at_least=1)),
            max_failures=amount_of(spec["max_failures"], total, at_least=0),
            pause_seconds=float(spec["pause_seconds"]),
            total=total,
        )

    def batches(self) -> list[range]:
        """The target positions of each batch, in order."""
        return [range(i, min(i + self.batch_size, self.total)) for i in range(0, self.total, self.batch_size)]
