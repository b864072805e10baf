"""Submission body validation (docs/contract.md#submission): every problem with its field path, no database
access.

Asset existence is checked later by ``execution_submit`` (it needs the tenant and must not
leak another tenant's inventory before the membership check).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from execution.enums import ActionClass, Environment, LockScope, SlaClass
from execution.plans.hashing import canonical_json
from execution.plans.strategy import strategy_problems
from execution.plans.types import step_type_info

MAX_STEPS = 200
MAX_PLAN_BYTES = 256 * 1024
MAX_NAME = 200
MAX_HOSTNAME = 255
MAX_TAGS = 32
MAX_TAG = 64
MAX_TRACE_ID = 128
MAX_METADATA_BYTES = 16 * 1024
# The fields of a submission's body and of its plan: anything else is refused by name (a typo
# such as "aproval_level" was ignored, and the plan ran without the approval it asked for).
SUBMISSION_KEYS = frozenset(
    {
        "tenant",
        "plan",
        "approval_level",
        "sla_class",
        "priority",
        "dry_run",
        "tags",
        "metadata",
        "trace_id",
        "parent_execution_id",
        "on_behalf_of",
    }
)
PLAN_KEYS = frozenset({"name", "environment", "estimated_duration_seconds", "lock_scope", "steps"})
TARGET_KEYS = frozenset({"asset_id", "hostname"})
STEP_KEYS = {
    "name",
    "type",
    "target",
    "params",
    "action_class",
    "timeout_seconds",
    "continue_on_error",
    "max_retries",
    "targets",
    "strategy",
}
MAX_SELECTOR_TAGS = 16


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


class PlanInvalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))
        self.problems = problems


@dataclass
class SubmissionInput:
    tenant: str
    plan: dict[str, Any]
    approval_level: int = 0
    sla_class: str | None = None
    priority: int = 5
    dry_run: bool = False
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    trace_id: str = ""
    # The W3C traceparent stored with the execution (opsconductor/telemetry.py); not a body field.
    trace_parent: str = ""
    parent_execution_id: uuid.UUID | None = None
    on_behalf_of: str | None = None
    # The runbook launch that rendered the plan (execution/runbooks/); not a body field.
    runbook: dict[str, Any] | None = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _string(problems: list[Problem], path: str, value: Any, *, max_len: int, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        problems.append(Problem(path, "a non-empty string is required" if required else "must be a string"))
        return ""
    if len(value) > max_len:
        problems.append(Problem(path, f"longer than {max_len} characters"))
    return value


def _target(problems: list[Problem], path: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(Problem(path, "must be an object with asset_id or hostname"))
        return None
    _unknown(problems, path, value, TARGET_KEYS)
    if ("asset_id" in value) == ("hostname" in value):
        problems.append(Problem(path, "exactly one of asset_id or hostname is required"))
        return None
    if "asset_id" in value:
        asset_id = value["asset_id"]
        if not (_is_int(asset_id) and asset_id > 0) and not (
            isinstance(asset_id, str) and 0 < len(asset_id) <= 255
        ):
            problems.append(Problem(f"{path}.asset_id", "must be a positive integer or a string id"))
            return None
        return {"asset_id": asset_id}
    hostname = _string(problems, f"{path}.hostname", value["hostname"], max_len=MAX_HOSTNAME)
    return {"hostname": hostname} if hostname else None


def _targets(problems: list[Problem], path: str, value: Any) -> list[Any] | dict[str, Any] | None:
    """A fleet step's ``targets`` (docs/fleet.md): a non-empty list of references, or a
    selector ``{"tags": [...]}``. The count cap is checked once resolved (submission)."""
    if isinstance(value, dict):
        unknown = set(value) - {"tags"}
        if unknown:
            problems.append(
                Problem(path, f"unknown selector field(s): {', '.join(sorted(map(str, unknown)))}")
            )
        tags = value.get("tags")
        if not isinstance(tags, list) or not tags or len(tags) > MAX_SELECTOR_TAGS:
            problems.append(Problem(f"{path}.tags", f"a list of 1..{MAX_SELECTOR_TAGS} tags is required"))
            return None
        for i, tag in enumerate(tags):
            _string(problems, f"{path}.tags[{i}]", tag, max_len=MAX_TAG)
        return {"tags": sorted({t for t in tags if isinstance(t, str)})}
    if not isinstance(value, list) or not value:
        problems.append(
            Problem(path, 'a non-empty list of targets or a selector {"tags": [...]} is required')
        )
        return None
    out: list[Any] = []
    for i, item in enumerate(value):
        # A resolved snapshot names both (asset id and its hostname): run again resubmits it.
        if isinstance(item, dict) and "asset_id" in item and "hostname" in item:
            item = {"asset_id": item["asset_id"]}
        target = _target(problems, f"{path}[{i}]", item)
        if target is not None:
            out.append(target)
    return out


def _step(problems: list[Problem], path: str, step: Any) -> dict[str, Any]:
    if not isinstance(step, dict):
        problems.append(Problem(path, "must be an object"))
        return {}
    _unknown(problems, path, step, STEP_KEYS)
    out: dict[str, Any] = {"name": _string(problems, f"{path}.name", step.get("name"), max_len=MAX_NAME)}
    type_name = step.get("type")
    canonical, runner = (None, None)
    if not isinstance(type_name, str) or not type_name:
        problems.append(Problem(f"{path}.type", "a step type is required"))
    else:
        canonical, runner = step_type_info(type_name)
        if canonical is None:
            problems.append(Problem(f"{path}.type", f"unknown step type {type_name[:64]!r}"))
    out["type"] = canonical or type_name
    params = step.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        problems.append(Problem(f"{path}.params", "must be an object"))
        params = {}
    elif runner is not None:
        for problem in runner.validate_params(params):
            problems.append(Problem(f"{path}.params.{problem.path}", problem.message))
    out["params"] = params
    target = _target(problems, f"{path}.target", step.get("target"))
    if "targets" in step:
        if step.get("target") is not None:
            problems.append(Problem(f"{path}.targets", "give either target or targets, not both"))
        targets = _targets(problems, f"{path}.targets", step["targets"])
        if targets is not None:
            out["targets"] = targets
    if "strategy" in step:
        wrong = strategy_problems(step["strategy"])
        problems.extend(Problem(f"{path}.strategy" + (f".{key}" if key else ""), why) for key, why in wrong)
        if not wrong:
            out["strategy"] = step["strategy"]
    if target is not None:
        out["target"] = target
    elif step.get("target") is None and "targets" not in step and canonical is not None:
        from execution.plans.types import step_needs_target

        if step_needs_target(canonical):
            problems.append(
                Problem(
                    f"{path}.target",
                    f"a {canonical} step needs a target (asset_id or hostname); "
                    "nothing runs on the worker host implicitly",
                )
            )
    if "action_class" in step:
        if step["action_class"] not in ActionClass.values:
            problems.append(Problem(f"{path}.action_class", f"must be one of {ActionClass.values}"))
        else:
            out["action_class"] = step["action_class"]
    if "timeout_seconds" in step:
        value = step["timeout_seconds"]
        if not _is_number(value) or not 0 < value <= 86400:
            problems.append(Problem(f"{path}.timeout_seconds", "must be a number in (0, 86400]"))
        else:
            out["timeout_seconds"] = value
    if "continue_on_error" in step:
        if not isinstance(step["continue_on_error"], bool):
            problems.append(Problem(f"{path}.continue_on_error", "must be true or false"))
        else:
            out["continue_on_error"] = step["continue_on_error"]
    if "max_retries" in step:
        value = step["max_retries"]
        if not _is_int(value) or not 0 <= value <= 10:
            problems.append(Problem(f"{path}.max_retries", "must be an integer 0..10"))
        else:
            out["max_retries"] = value
    return out


def _plan(problems: list[Problem], plan: Any) -> dict[str, Any]:
    if not isinstance(plan, dict):
        problems.append(Problem("plan", "a plan object is required"))
        return {}
    size = len(canonical_json(plan).encode())
    if size > MAX_PLAN_BYTES:
        problems.append(Problem("plan", f"plan is {size} bytes; the limit is {MAX_PLAN_BYTES}"))
        return {}
    _unknown(problems, "plan", plan, PLAN_KEYS)
    out: dict[str, Any] = {"name": _string(problems, "plan.name", plan.get("name"), max_len=MAX_NAME)}
    environment = plan.get("environment")
    if environment not in Environment.values:
        problems.append(Problem("plan.environment", f"must be one of {Environment.values}"))
    out["environment"] = environment
    if plan.get("estimated_duration_seconds") is not None:
        value = plan["estimated_duration_seconds"]
        if not _is_number(value) or not 0 <= value <= 7 * 86400:
            problems.append(Problem("plan.estimated_duration_seconds", "must be a number of seconds >= 0"))
        else:
            out["estimated_duration_seconds"] = value
    if plan.get("lock_scope") is not None:  # stored only when given: older plans keep their hash
        if plan["lock_scope"] not in LockScope.values:
            problems.append(Problem("plan.lock_scope", f"must be one of {LockScope.values}"))
        else:
            out["lock_scope"] = plan["lock_scope"]
    steps = plan.get("steps")
    if not isinstance(steps, list) or not steps:
        problems.append(Problem("plan.steps", "a non-empty list of steps is required"))
        steps = []
    elif len(steps) > MAX_STEPS:
        problems.append(Problem("plan.steps", f"{len(steps)} steps; the limit is {MAX_STEPS}"))
        steps = []
    out["steps"] = [_step(problems, f"plan.steps[{i}]", s) for i, s in enumerate(steps)]
    return out


def _unknown(problems: list[Problem], path: str, value: dict[str, Any], known: Collection[str]) -> None:
    """One problem per field of ``value`` not in ``known``, at its own path (``path`` "" for
    the body's top level)."""
    for key in sorted(set(map(str, value)).difference(known)):
        problems.append(Problem(f"{path}.{key}" if path else key, "unknown field"))


def _nul_paths(value: Any, path: str) -> list[Problem]:
    """PostgreSQL's jsonb and text refuse NUL characters: name where they are."""
    if isinstance(value, str):
        return [Problem(path or "body", "NUL characters are not allowed")] if "\x00" in value else []
    found: list[Problem] = []
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                found.append(Problem(child.replace("\x00", ""), "NUL characters are not allowed in keys"))
            found.extend(_nul_paths(item, child))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_nul_paths(item, f"{path}[{index}]"))
    return found


def submission_validate(data: Any) -> SubmissionInput:
    """Check a submission body; raise :class:`PlanInvalid` listing every problem."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise PlanInvalid([Problem("body", "a JSON object is required")])
    nul = _nul_paths(data, "")
    if nul:
        raise PlanInvalid(nul)
    _unknown(problems, "", data, SUBMISSION_KEYS)
    tenant = _string(problems, "tenant", data.get("tenant"), max_len=64)
    plan = _plan(problems, data.get("plan"))
    result = SubmissionInput(tenant=tenant, plan=plan)
    if data.get("approval_level") is not None:
        value = data["approval_level"]
        if not _is_int(value) or not 0 <= value <= 3:
            problems.append(Problem("approval_level", "must be an integer 0..3"))
        else:
            result.approval_level = value
    if data.get("sla_class") is not None:
        if data["sla_class"] not in SlaClass.values:
            problems.append(Problem("sla_class", f"must be one of {SlaClass.values}"))
        else:
            result.sla_class = data["sla_class"]
    if data.get("priority") is not None:
        value = data["priority"]
        if not _is_int(value) or not 1 <= value <= 10:
            problems.append(Problem("priority", "must be an integer 1..10"))
        else:
            result.priority = value
    if data.get("dry_run") is not None:
        if not isinstance(data["dry_run"], bool):
            problems.append(Problem("dry_run", "must be true or false"))
        else:
            result.dry_run = data["dry_run"]
    tags = data.get("tags")
    if tags is not None:
        if not isinstance(tags, list) or len(tags) > MAX_TAGS:
            problems.append(Problem("tags", f"must be a list of at most {MAX_TAGS} strings"))
        else:
            for i, tag in enumerate(tags):
                _string(problems, f"tags[{i}]", tag, max_len=MAX_TAG)
            result.tags = [t for t in tags if isinstance(t, str)]
    metadata = data.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            problems.append(Problem("metadata", "must be an object"))
        elif len(canonical_json(metadata).encode()) > MAX_METADATA_BYTES:
            problems.append(Problem("metadata", f"larger than {MAX_METADATA_BYTES} bytes"))
        else:
            result.metadata = metadata
    result.trace_id = _string(
        problems, "trace_id", data.get("trace_id"), max_len=MAX_TRACE_ID, required=False
    )
    parent = data.get("parent_execution_id")
    if parent is not None:
        try:
            result.parent_execution_id = uuid.UUID(str(parent))
        except ValueError:
            problems.append(Problem("parent_execution_id", "must be a UUID"))
    if data.get("on_behalf_of") is not None:
        result.on_behalf_of = _string(problems, "on_behalf_of", data["on_behalf_of"], max_len=150) or None
    if problems:
        raise PlanInvalid(problems)
    return result
