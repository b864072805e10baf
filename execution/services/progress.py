"""``step_output_record``: a chunk of step output as a ``step_output`` event (§11).

Issue 7 adds batching (a bounded number of events per second per execution) here.
"""

from __future__ import annotations

from django.db import transaction

from execution.enums import ActorType
from execution.masking import mask_text
from execution.models import Execution
from execution.services.events import event_record

STEP_OUTPUT_CHUNK_LIMIT = 4096


def step_output_record(
    *, execution: Execution, step_index: int, stream: str, text: str, secrets: tuple[str, ...] = ()
) -> None:
    """Record one masked, size-capped chunk of output of a running step."""
    chunk = mask_text(text[:STEP_OUTPUT_CHUNK_LIMIT], secrets)
    with transaction.atomic():
        event_record(
            execution=execution,
            event_type="step_output",
            actor_type=ActorType.WORKER,
            step_index=step_index,
            details={"stream": stream, "text": chunk, "truncated": len(text) > STEP_OUTPUT_CHUNK_LIMIT},
        )
