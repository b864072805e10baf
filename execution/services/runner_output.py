"""The runner adapter's boundary (docs/contract.md#secrets-and-masking, docs/secrets.md): what leaves a
runner, or an
exception raised around one, is masked here before anything stores, caps, logs or sends it."""

from __future__ import annotations

from execution.masking import mask_capped, mask_data, mask_text
from execution.runners.base import StepResult

ERROR_MESSAGE_CAP = 4000


def step_result_mask(*, result: StepResult, secrets: tuple[str, ...]) -> StepResult:
    """Mask a runner's result in place: the error text is masked, then capped (a cap never
    keeps part of a secret); the output is masked whole (the step's log is built from it)."""
    result.error_message = mask_capped(result.error_message, secrets, cap=ERROR_MESSAGE_CAP)
    result.output = mask_data(result.output, secrets)
    return result


def exception_text(exc: BaseException, secrets: tuple[str, ...]) -> str:
    """``Type: message`` of an exception, masked (a driver error may echo a parameter)."""
    return mask_text(f"{type(exc).__name__}: {exc}", secrets)
