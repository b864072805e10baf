"""Writes of runbooks (docs/runbooks.md): create, add a version, launch.

Editing is the tenant's configuration (``Right.CONFIGURE``: its admins). Launching renders
the version's template with the checked values and hands the plan to ``execution_submit``,
which decides everything a submission decides (plan 400s, the submit right of the rendered
plan, approval, idempotency, limits). A schedule's fire and a trigger call ``runbook_launch``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from execution import policy
from execution.errors import Conflict, NotFound
from execution.models import Tenant
from execution.plans import PlanInvalid, Problem, plan_hash, submission_validate
from execution.plans.hashing import plan_normalize
from execution.runbooks.models import Runbook, RunbookVersion
from execution.runbooks.params import params_check, properties_of, sample_values, schema_check
from execution.runbooks.render import render, template_problems, templated_paths
from execution.services.classify import plan_classify
from execution.services.submit import SubmitOutcome, execution_submit

MAX_TAGS = 32
SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


def version_problems(*, tenant: Tenant, parameters: Any, plan: Any, min_approval_level: Any) -> list[Problem]:
    problems = schema_check(parameters)
    level_ok = isinstance(min_approval_level, int) and not isinstance(min_approval_level, bool)
    if not level_ok or not 0 <= min_approval_level <= 3:
        problems.append(Problem("min_approval_level", "must be an integer 0..3"))
    if problems:
        return problems
    parameters = parameters or {}
    problems = template_problems(plan, set(properties_of(parameters)))
    if problems:
        return problems
    # The template's shape, checked as a plan with a value in every parameter; what a
    # placeholder fills is checked at each launch (with the launch's values).
    filled = render(plan, sample_values(parameters))
    try:
        submission_validate({"tenant": tenant.slug, "plan": filled})
    except PlanInvalid as invalid:
        templated = templated_paths(plan)
        return [p for p in invalid.problems if p.path not in templated]
    return []


def _require_configure(actor: Any, tenant: Tenant, what: str, door: str) -> None:
    policy.require(actor, policy.Right.CONFIGURE, tenant=tenant, door=door, details={"runbook": what})


def runbook_create(
    *,
    tenant: Tenant,
    actor: Any,
    slug: str,
    name: str,
    description: str = "",
    tags: list[str] | None = None,
    parameters: Any,
    plan: Any,
    min_approval_level: Any = 0,
    door: str = "",
) -> Runbook:
    """A runbook and its version 1. Raises RightDenied (not an admin of the tenant),
    PlanInvalid (every problem with its path), Conflict (the slug is taken)."""
    _require_configure(actor, tenant, slug, door)
    problems = []
    if not isinstance(slug, str) or not SLUG.match(slug):
        problems.append(Problem("slug", "letters, digits, - and _ only, at most 64"))
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        problems.append(Problem("name", "a non-empty string of at most 200 characters is required"))
    if not isinstance(description, str):
        problems.append(Problem("description", "must be a string"))
    tags = tags or []
    if not isinstance(tags, list) or len(tags) > MAX_TAGS or not all(isinstance(t, str) for t in tags):
        problems.append(Problem("tags", f"a list of at most {MAX_TAGS} strings"))
    problems += version_problems(
        tenant=tenant, parameters=parameters, plan=plan, min_approval_level=min_approval_level
    )
    if problems:
        raise PlanInvalid(problems)
    try:
        with transaction.atomic():
            runbook = Runbook.objects.create(
                tenant=tenant, slug=slug, name=name, description=description, owner=actor, tags=tags
            )
            RunbookVersion.objects.create(
                runbook=runbook,
                number=1,
                parameters=parameters or {},
                plan=plan,
                min_approval_level=min_approval_level,
                created_by=actor,
            )
    except IntegrityError:
        raise Conflict(f"tenant {tenant.slug!r} already has a runbook {slug!r}") from None
    return runbook


def runbook_version_add(
    *,
    runbook: Runbook,
    actor: Any,
    parameters: Any,
    plan: Any,
    min_approval_level: Any = 0,
    door: str = "",
) -> RunbookVersion:
    """The runbook's next version (the earlier ones stay as they are)."""
    _require_configure(actor, runbook.tenant, runbook.slug, door)
    problems = version_problems(
        tenant=runbook.tenant, parameters=parameters, plan=plan, min_approval_level=min_approval_level
    )
    if problems:
        raise PlanInvalid(problems)
    for _attempt in range(5):
        latest = runbook.versions.aggregate(n=Max("number"))["n"] or 0
        try:
            with transaction.atomic():
                # unique (runbook, number): an editor who lost the race takes the next number
                version = RunbookVersion.objects.create(
                    runbook=runbook,
                    number=latest + 1,
                    parameters=parameters or {},
                    plan=plan,
                    min_approval_level=min_approval_level,
                    created_by=actor,
                )
                Runbook.objects.filter(pk=runbook.pk).update(updated_at=version.created_at)
            return version
        except IntegrityError:
            continue
    raise Conflict("could not number the version; retry")


def version_of(runbook: Runbook, number: int | None = None) -> RunbookVersion:
    versions = runbook.versions.all()
    found = versions.filter(number=number).first() if number is not None else versions.first()
    if found is None:
        raise NotFound(f"runbook {runbook.slug!r} has no version {number}")
    return found


@dataclass
class Rendered:
    version: RunbookVersion
    values: dict[str, Any]
    plan: dict[str, Any]
    plan_hash: str
    # The plan as the submit service stores it (validated, normalized).
    normal: dict[str, Any]


def runbook_render(*, version: RunbookVersion, params: Any) -> Rendered:
    """The plan a launch with ``params`` submits; raises PlanInvalid naming ``params.X``."""
    tenant = version.runbook.tenant
    values = params_check(version.parameters, params, tenant=tenant)
    plan = render(version.plan, values)
    normal = plan_normalize(submission_validate({"tenant": tenant.slug, "plan": plan}).plan)
    return Rendered(version=version, values=values, plan=plan, plan_hash=plan_hash(normal), normal=normal)


@dataclass
class Preview:
    rendered: Rendered
    approval_level: int
    action_class: str
    execution_mode: str


def runbook_preview(*, version: RunbookVersion, params: Any) -> Preview:
    """What a launch with ``params`` would submit and how it would be classified (its
    approval level with the environment's minimum, action class, mode); writes nothing.
    Raises PlanInvalid like a launch."""
    rendered = runbook_render(version=version, params=params)
    patterns = version.runbook.tenant.read_only_command_rules.values_list("pattern", flat=True)
    found = plan_classify(
        plan=rendered.normal, requested_level=version.min_approval_level, read_only_patterns=list(patterns)
    )
    return Preview(
        rendered=rendered,
        approval_level=found.approval_level,
        action_class=found.action_class,
        execution_mode=found.execution_mode,
    )


def runbook_launch(
    *,
    runbook: Runbook,
    actor: Any,
    params: Any,
    version: int | None = None,
    dry_run: bool = False,
    idempotency_header: str | None = None,
    wait: bool = True,
) -> SubmitOutcome:
    """Render ``runbook`` (its latest version, or ``version``) with ``params`` and submit it as
    ``actor``. Raises what ``execution_submit`` raises (PlanInvalid, SubmitDenied, KeyReused)."""
    rendered = runbook_render(version=version_of(runbook, version), params=params)
    return execution_submit(
        tenant=runbook.tenant,
        actor=actor,
        plan=rendered.plan,
        approval_level=rendered.version.min_approval_level,
        dry_run=dry_run,
        idempotency_header=idempotency_header,
        wait=wait,
        runbook={
            "slug": runbook.slug,
            "version": rendered.version.number,
            "params": rendered.values,
            # who wrote the plan that runs: four eyes never count them (execution/policy/four_eyes.py)
            "author_id": rendered.version.created_by_id,
        },
    )
