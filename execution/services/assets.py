"""``asset_resolve``: a plan target (asset id or hostname) -> a ResolvedTarget.

The Asset Service (``ASSET_SERVICE_URL``, contract in docs/services.md) serves when it is
configured; otherwise the built-in inventory (the ``assets`` table, edited in the admin).
"""

from __future__ import annotations

from typing import Any

from execution.enums import ConnectionType
from execution.errors import NotFound
from execution.models import Asset, Tenant
from execution.models.assets import asset_address_problems
from execution.outbound.addresses import port_problem
from execution.runners.base import ResolvedTarget


def from_model(asset: Asset) -> ResolvedTarget:
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


def from_service(data: dict[str, Any]) -> ResolvedTarget:
    port = data.get("port")
    if str(data.get("connection_type") or "") == ConnectionType.LOCAL:
        # A local asset runs commands on the worker host: only a superuser makes one, in the
        # built-in inventory (docs/security.md). A remote inventory cannot grant that.
        raise NotFound(
            f"asset {data.get('id')!r} has a local connection in the Asset Service; "
            "local assets exist only in the built-in inventory"
        )
    problems = asset_address_problems(
        connection_type=str(data.get("connection_type") or "ssh"),
        hostname=str(data.get("hostname") or ""),
        address=str(data.get("address") or ""),
        metadata=data.get("metadata") or {},
    )
    try:
        port_number = None if port is None or port == "" else int(port)
    except (TypeError, ValueError):
        port_number = 0
    if port_number is not None and port_problem(port_number) is not None:
        problems["port"] = f"{port!r} {port_problem(port_number)}"
    if problems:
        # The same address rules as the built-in inventory (one host, no socket path, no host
        # list): a remote inventory cannot make an asset reach the worker host either.
        raise NotFound(
            f"asset {data.get('id')!r} of the Asset Service is refused: "
            + "; ".join(f"{field} {why}" for field, why in sorted(problems.items()))
        )
    return ResolvedTarget(
        asset_id=str(data["id"]),
        hostname=str(data.get("hostname") or ""),
        connection_type=str(data.get("connection_type") or "ssh"),
        address=str(data.get("address") or ""),
        port=port_number,
        username=str(data.get("username") or ""),
        credential_ref=str(data.get("credential_ref") or ""),
        tags=tuple(data.get("tags") or ()),
        metadata=dict(data.get("metadata") or {}),
    )


def _resolve_via_service(client: Any, tenant: Tenant, target: dict[str, Any]) -> ResolvedTarget:
    try:
        if target.get("asset_id") is not None:
            return from_service(client.asset_get(tenant=tenant.slug, asset_id=target["asset_id"]))
        hostname = target.get("hostname")
        if hostname:
            found = client.asset_by_hostname(tenant=tenant.slug, hostname=hostname)
            if found is None:
                raise NotFound(f"unknown hostname {hostname!r}")
            return from_service(found)
    finally:
        client.close()
    raise NotFound("target names neither asset_id nor hostname")


def asset_resolve(*, tenant: Tenant, target: dict[str, Any]) -> ResolvedTarget:
    """Resolve ``{"asset_id": 7}`` or ``{"hostname": "web-1"}`` within ``tenant``.

    Raises NotFound when the tenant has no such asset (another tenant's asset is not found);
    with the Asset Service configured, ServiceUnavailable/ServiceError when it cannot answer.
    """
    from execution.clients.assets import asset_service_client

    client = asset_service_client()
    if client is not None:
        return _resolve_via_service(client, tenant, target)
    queryset = Asset.objects.filter(tenant=tenant)
    if target.get("asset_id") is not None:
        try:
            asset_pk = int(target["asset_id"])
        except (TypeError, ValueError):
            raise NotFound(f"unknown asset id {target['asset_id']!r}") from None
        asset = queryset.filter(pk=asset_pk).first()
        if asset is None:
            raise NotFound(f"unknown asset id {target['asset_id']!r}")
        return from_model(asset)
    hostname = target.get("hostname")
    if hostname:
        asset = queryset.filter(hostname=hostname).first()
        if asset is None:
            raise NotFound(f"unknown hostname {hostname!r}")
        return from_model(asset)
    raise NotFound("target names neither asset_id nor hostname")


def assets_by_id(*, tenant: Tenant, asset_ids: list[str]) -> dict[str, ResolvedTarget]:
    """The built-in inventory's assets of ``tenant`` among ``asset_ids``, in one query, by id
    (a fleet step's targets: execution/worker/step_shared.py). {} with the Asset Service
    configured: each target is asked for there (``asset_resolve``), as is an id not found here."""
    from execution.clients.assets import asset_service_client

    client = asset_service_client()
    if client is not None:
        client.close()
        return {}
    numbers = [int(a) for a in asset_ids if str(a).isdigit()]
    return {str(asset.pk): from_model(asset) for asset in Asset.objects.filter(tenant=tenant, pk__in=numbers)}
