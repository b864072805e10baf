"""Clients of the two optional external services of docs/contract.md#steps (contracts: docs/services.md)."""

from execution.clients.assets import AssetServiceClient, asset_service_client
from execution.clients.automation import AutomationServiceClient, automation_service_client
from execution.clients.base import ServiceClient, ServiceError, ServiceUnavailable

__all__ = [
    "AssetServiceClient",
    "AutomationServiceClient",
    "ServiceClient",
    "ServiceError",
    "ServiceUnavailable",
    "asset_service_client",
    "automation_service_client",
]
