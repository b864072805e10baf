"""Plan schema validation and canonical hashing (docs/contract.md#submission)."""

from execution.plans.hashing import canonical_json, plan_hash
from execution.plans.schema import (
    MAX_PLAN_BYTES,
    MAX_STEPS,
    PlanInvalid,
    Problem,
    SubmissionInput,
    submission_validate,
)

__all__ = [
    "MAX_PLAN_BYTES",
    "MAX_STEPS",
    "PlanInvalid",
    "Problem",
    "SubmissionInput",
    "canonical_json",
    "plan_hash",
    "submission_validate",
]
