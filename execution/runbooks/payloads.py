"""JSON of runbooks (REST, the CLI's output): a runbook, a version."""

from __future__ import annotations

from typing import Any

from execution.runbooks.models import Runbook, RunbookVersion


def version_payload(version: RunbookVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "parameters": version.parameters,
        "plan": version.plan,
        "min_approval_level": version.min_approval_level,
        "created_by": version.created_by.get_username() if version.created_by else None,
        "created_at": version.created_at.isoformat(),
    }


def runbook_payload(runbook: Runbook, *, versions: list[RunbookVersion]) -> dict[str, Any]:
    """``versions``: newest first; the first is the version a launch uses."""
    return {
        "tenant": runbook.tenant.slug,
        "slug": runbook.slug,
        "name": runbook.name,
        "description": runbook.description,
        "owner": runbook.owner.get_username(),
        "tags": runbook.tags,
        "created_at": runbook.created_at.isoformat(),
        "updated_at": runbook.updated_at.isoformat(),
        "version": versions[0].number if versions else None,
        "versions": [version_payload(v) for v in versions],
        "links": {
            "self": f"/api/v1/runbooks/{runbook.slug}/?tenant={runbook.tenant.slug}",
            "launch": f"/api/v1/runbooks/{runbook.slug}/launch/",
            "page": f"/runbooks/{runbook.tenant.slug}/{runbook.slug}/",
        },
    }
