"""Automation Service client (docs/services.md): run a command or workflow on a target,
follow it, cancel it, list active executions and history, health."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings

from execution.clients.base import ServiceClient

TERMINAL = frozenset({"completed", "failed", "cancelled", "timeout"})


class AutomationServiceClient(ServiceClient):
    service_name = "Automation Service"

    def job_start(
        self,
        *,
        tenant: str,
        target: dict[str, Any],
        command: str,
        env: dict[str, str] | None = None,
        timeout_seconds: float,
        idempotency_key: str,
    ) -> dict[str, Any]:
        body = {
            "tenant": tenant,
            "target": target,
            "command": command,
            "env": env or {},
            "timeout_seconds": timeout_seconds,
        }
        return dict(
            self.request(
                "POST", "/api/v1/executions", json=body, headers={"Idempotency-Key": idempotency_key}
            )
        )

    def workflow_start(
        self,
        *,
        tenant: str,
        workflow: str,
        target: dict[str, Any],
        inputs: dict[str, Any],
        timeout_seconds: float,
        idempotency_key: str,
    ) -> dict[str, Any]:
        body = {"tenant": tenant, "target": target, "inputs": inputs, "timeout_seconds": timeout_seconds}
        return dict(
            self.request(
                "POST",
                f"/api/v1/workflows/{quote(workflow, safe='')}/runs",
                json=body,
                headers={"Idempotency-Key": idempotency_key},
            )
        )

    def job_get(self, *, job_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/v1/executions/{quote(job_id, safe='')}"))

    def job_cancel(self, *, job_id: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/api/v1/executions/{quote(job_id, safe='')}/cancel"))

    def jobs_history(
        self, *, tenant: str, hostname: str = "", workflow: str = "", limit: int = 50
    ) -> list[dict[str, Any]]:
        """Jobs of a tenant on the service, newest first (of one target / workflow when given)."""
        params = _history_params(tenant=tenant, hostname=hostname, workflow=workflow, limit=limit)
        return list(self.request("GET", "/api/v1/executions", params=params)["results"])

    def history_url(self, *, tenant: str, hostname: str = "", workflow: str = "") -> str:
        """The service's address of what ``jobs_history`` reads: the link a step's output keeps."""
        params = _history_params(tenant=tenant, hostname=hostname, workflow=workflow, limit=50)
        return f"{self.base_url}/api/v1/executions?{urlencode(params)}"


def _history_params(*, tenant: str, hostname: str, workflow: str, limit: int) -> dict[str, Any]:
    params: dict[str, Any] = {"tenant": tenant}
    if hostname:
        params["hostname"] = hostname
    if workflow:
        params["workflow"] = workflow
    params["limit"] = limit
    return params


def automation_service_client() -> AutomationServiceClient | None:
    """The configured client, or None when AUTOMATION_SERVICE_URL is unset."""
    if not settings.AUTOMATION_SERVICE_URL:
        return None
    return AutomationServiceClient(
        base_url=settings.AUTOMATION_SERVICE_URL, token=settings.AUTOMATION_SERVICE_TOKEN
    )
