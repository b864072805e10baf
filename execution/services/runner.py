"""``execution_run_inline``: immediate mode (§2, §5) through the same engine as the workers."""

from __future__ import annotations

from execution.engine.run import run_attempt
from execution.engine.worker import worker_id
from execution.models import Execution


def execution_run_inline(*, execution: Execution) -> Execution:
    """Run an ``approved`` immediate execution in this process (same locks, timeouts and
    masking as a worker; bounded by the policy's execution timeout); return the fresh row."""
    run_attempt(execution_pk=execution.pk, claim=None, worker_id=f"inline:{worker_id()}")
    return Execution.objects.get(pk=execution.pk)
