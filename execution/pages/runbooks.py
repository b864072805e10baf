"""``/runbooks/``: the tenant's runbooks, one runbook's launch form (generated from its
parameter schema), a preview of the rendered plan and its approval level, and the version
history with a diff between versions (docs/runbooks.md#doors). A launch goes through
``runbook_launch`` like every door."""

from __future__ import annotations

import difflib
import json
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from execution import policy
from execution.clients.base import ServiceError
from execution.enums import Environment
from execution.errors import DomainError, NotFound
from execution.models import Execution
from execution.plans import PlanInvalid
from execution.runbooks.models import Runbook, RunbookVersion
from execution.runbooks.params import choices_for, params_from_text, properties_of
from execution.runbooks.schedules import next_fire_times
from execution.runbooks.selectors import runbook_find, runbooks_visible_to
from execution.runbooks.services import runbook_launch, runbook_preview, version_of
from execution.services.submit import SubmitDenied

FIELD = "p_"


@login_required
def runbooks_page(request: HttpRequest) -> HttpResponse:
    runbooks = runbooks_visible_to(request.user, door="page")
    return render(request, "runbooks/list.html", {"runbooks": runbooks})


def _runbook(request: HttpRequest, tenant_slug: str, slug: str) -> Runbook:
    try:
        return runbook_find(request.user, slug=slug, tenant=tenant_slug, door="page")
    except NotFound:
        raise Http404("No such runbook") from None


def _version(runbook: Runbook, raw: str | None) -> RunbookVersion:
    try:
        return version_of(runbook, int(raw) if raw else None)
    except (ValueError, NotFound):
        raise Http404("No such version") from None


def _fields(version: RunbookVersion, values: dict[str, Any], errors: dict[str, str]) -> list[dict[str, Any]]:
    """The form's inputs, one per parameter, from the schema."""
    required = set((version.parameters or {}).get("required") or [])
    fields = []
    for name, spec in properties_of(version.parameters).items():
        value = values.get(name, spec.get("default"))
        choices = None
        if "choices_from" in spec:
            choices = choices_for(version.runbook.tenant, spec["choices_from"])
        elif "enum" in spec:
            choices = [str(v) for v in spec["enum"]]
        elif spec["type"] == "boolean":
            choices = ["true", "false"]
        text = (
            ("true" if value else "false")
            if isinstance(value, bool)
            else ("" if value is None else str(value))
        )
        fields.append(
            {
                "name": name,
                "input": f"{FIELD}{name}",
                "label": spec.get("title") or name,
                "help": spec.get("description", ""),
                "type": spec["type"],
                "required": name in required,
                "value": text,
                "choices": choices,
                "minimum": spec.get("minimum"),
                "maximum": spec.get("maximum"),
                "pattern": spec.get("pattern", ""),
                "error": errors.get(f"params.{name}", ""),
            }
        )
    return fields


def _posted(data: QueryDict, version: RunbookVersion) -> dict[str, Any]:
    raw = {key[len(FIELD) :]: str(data.get(key, "")) for key in data if key.startswith(FIELD)}
    return params_from_text(version.parameters, raw)


def _diff(older: RunbookVersion | None, newer: RunbookVersion) -> str:
    def text(v: RunbookVersion | None) -> list[str]:
        if v is None:
            return []
        body = {"parameters": v.parameters, "plan": v.plan, "min_approval_level": v.min_approval_level}
        return json.dumps(body, indent=2, sort_keys=True).splitlines(keepends=True)

    label = f"v{older.number}" if older else "(none)"
    return "".join(difflib.unified_diff(text(older), text(newer), label, f"v{newer.number}"))


def _history(runbook: Runbook) -> list[dict[str, Any]]:
    versions = list(runbook.versions.select_related("created_by"))  # newest first
    return [
        {"version": v, "diff": _diff(versions[i + 1] if i + 1 < len(versions) else None, v)}
        for i, v in enumerate(versions)
    ]


def _from_execution(request: HttpRequest, runbook: Runbook, raw: str | None) -> dict[str, Any] | None:
    """The launch record of an execution of this runbook the user reads (Run again)."""
    if not raw:
        return None
    try:
        key = uuid.UUID(raw)
    except ValueError:
        return None
    execution = Execution.objects.filter(execution_id=key, tenant=runbook.tenant).first()
    if execution is None or not execution.runbook or execution.runbook.get("slug") != runbook.slug:
        return None
    if not policy.decide(request.user, policy.Right.READ, execution=execution):
        return None
    return dict(execution.runbook)


def _page(
    request: HttpRequest,
    runbook: Runbook,
    version: RunbookVersion,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    preview: Any = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or {}
    context = {
        "runbook": runbook,
        "version": version,
        "fields": _fields(version, values, errors),
        "errors": errors,
        "preview": preview,
        "preview_json": json.dumps(preview.rendered.normal, indent=2) if preview else "",
        "history": _history(runbook),
        "schedules": [
            {"schedule": sc, "next": next_fire_times(sc) if sc.active else []}
            for sc in runbook.schedules.select_related("owner")
        ],
        "can_launch": policy.decide(
            request.user, policy.Right.SUBMIT, tenant=runbook.tenant, environment=_environment(version)
        ).allowed,
    }
    return render(request, "runbooks/detail.html", context, status=status)


def _environment(version: RunbookVersion) -> str:
    """The template's environment for the Launch button's hint ('dev' when a parameter
    chooses it); the launch itself is decided on the rendered plan."""
    environment = version.plan.get("environment")
    return environment if environment in Environment.values else Environment.DEV


def _problems(invalid: PlanInvalid) -> dict[str, str]:
    out: dict[str, str] = {}
    for problem in invalid.problems:
        out.setdefault(problem.path, problem.message)
    return out


@login_required
def runbook_page(request: HttpRequest, tenant_slug: str, slug: str) -> HttpResponse:
    """The form (pre-filled from ``?from=<execution>`` on Run again) and, with ``preview``,
    the plan it renders, its hash and approval level."""
    runbook = _runbook(request, tenant_slug, slug)
    again = _from_execution(request, runbook, request.GET.get("from"))
    version = _version(runbook, request.GET.get("version") or (str(again["version"]) if again else None))
    values: dict[str, Any] = dict(again["params"]) if again else {}
    # The page's form posts its preview (its CSRF token stays out of the URL, the browser
    # history and the Referer); ``?preview=1&p_...`` links keep working.
    data = request.POST if request.method == "POST" else request.GET
    if "preview" not in data:
        return _page(request, runbook, version, values=values)
    if request.method == "POST":
        version = _version(runbook, data.get("version"))
    values = _posted(data, version)
    try:
        preview = runbook_preview(version=version, params=values)
    except PlanInvalid as invalid:
        return _page(request, runbook, version, values=values, errors=_problems(invalid), status=400)
    return _page(request, runbook, version, values=values, preview=preview)


@login_required
@require_POST
def runbook_launch_page(request: HttpRequest, tenant_slug: str, slug: str) -> HttpResponse:
    runbook = _runbook(request, tenant_slug, slug)
    version = _version(runbook, request.POST.get("version"))
    values = _posted(request.POST, version)
    try:
        outcome = runbook_launch(
            runbook=runbook, actor=request.user, params=values, version=version.number, wait=False
        )
    except PlanInvalid as invalid:
        return _page(request, runbook, version, values=values, errors=_problems(invalid), status=400)
    except SubmitDenied as denied:
        messages.error(request, f"Launch refused: {denied.reason}")
        return _page(request, runbook, version, values=values, status=403)
    except (DomainError, ServiceError) as error:
        messages.error(request, f"Launch refused: {error}")
        return _page(request, runbook, version, values=values, status=409)
    verb = "Already running as" if outcome.replayed else "Launched as"
    messages.success(request, f"{verb} {outcome.execution.execution_id}.")
    return redirect("execution_page", execution_id=outcome.execution.execution_id)
