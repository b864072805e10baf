"""``asset_resolve``: a plan target (asset id or hostname) -> a ResolvedTarget.

The built-in inventory serves when no Asset Service URL is configured; issue 6 adds the
Asset Service client behind this same function.
"""

from __future__ import annotations

from typing import Any

from execution.errors import NotFound
from execution.models import Asset, Tenant
from execution.runners.base import ResolvedTarget


def _from_model(asset: Asset) -> ResolvedTarget:
    return ResolvedTarget(
        asset_id=str(asset.pk),
        hostname=asset.hostname,
        connection_type=asset.connection_type,
        address=asset.address,
        port=asset.port,
        username=asset.username,
        credential_ref=asset.credential_ref,
        tags=tuple(asset.tags or ()),
        metadata=dict(asset.metadata or {}),
    )


def asset_resolve(*, tenant: Tenant, target: dict[str, Any]) -> ResolvedTarget:
    """Resolve ``{"asset_id": 7}`` or ``{"hostname": "web-1"}`` within ``tenant``.

    Raises NotFound when the tenant has no such asset (another tenant's asset is not found).
    """
    queryset = Asset.objects.filter(tenant=tenant)
    if target.get("asset_id") is not None:
        try:
            asset_pk = int(target["asset_id"])
        except (TypeError, ValueError):
            raise NotFound(f"unknown asset id {target['asset_id']!r}") from None
        asset = queryset.filter(pk=asset_pk).first()
        if asset is None:
            raise NotFound(f"unknown asset id {target['asset_id']!r}")
        return _from_model(asset)
    hostname = target.get("hostname")
    if hostname:
        asset = queryset.filter(hostname=hostname).first()
        if asset is None:
            raise NotFound(f"unknown hostname {hostname!r}")
        return _from_model(asset)
    raise NotFound("target names neither asset_id nor hostname")
