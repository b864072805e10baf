"""Asset Service client (docs/services.md): assets by id or hostname, and queries. An asset
carries its credential reference (never a value)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings

from execution.clients.base import ServiceClient


class AssetServiceClient(ServiceClient):
    service_name = "Asset Service"

    def _base(self, tenant: str) -> str:
        return f"/api/v1/tenants/{quote(tenant, safe='')}/assets"

    def asset_get(self, *, tenant: str, asset_id: str | int) -> dict[str, Any]:
        return dict(self.request("GET", f"{self._base(tenant)}/{quote(str(asset_id), safe='')}"))

    def assets_query(self, *, tenant: str, **filters: str) -> list[dict[str, Any]]:
        """``hostname=``, ``tag=``, ``connection_type=`` ... -> the matching assets."""
        answer = self.request("GET", self._base(tenant), params=filters)
        return list(answer.get("results", []))

    def asset_by_hostname(self, *, tenant: str, hostname: str) -> dict[str, Any] | None:
        results = self.assets_query(tenant=tenant, hostname=hostname)
        return results[0] if results else None


def asset_service_client() -> AssetServiceClient | None:
    """The configured client, or None when ASSET_SERVICE_URL is unset (built-in inventory)."""
    url = settings.ASSET_SERVICE_URL
    if not url:
        return None
    return AssetServiceClient(base_url=url, token=settings.ASSET_SERVICE_TOKEN)
