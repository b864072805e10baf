"""What a fleet step's targets share, looked up once per step in an attempt (docs/fleet.md
"Speed"): the step's assets (one query for all its targets), the execution's environment and
its tenant's outbound rules in it, and each credential the targets name.

The outbound guard still decides for every target's own address: only the loading of the
rules is shared (a rule changed during the step applies from the next step). A credential is
resolved just in time, when the first target that names it starts, audited once per read,
kept in memory for the step only (never written) and dropped when the step ends; a failed
resolution is not kept (the next target tries again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from execution.models import Tenant
from execution.outbound.rules import OutboundRules, outbound_rules
from execution.runners.base import ResolvedTarget
from execution.secrets import ResolvedSecrets
from execution.services.assets import asset_resolve, assets_by_id


class StepShared:
    """One fleet step's shared lookups; thread-safe (its targets run in a pool)."""

    def __init__(self, *, tenant: Tenant, tenant_slug: str, environment: str, asset_ids: list[str]) -> None:
        self.tenant = tenant
        self.environment = environment
        self.rules: OutboundRules = outbound_rules(tenant=tenant_slug, environment=environment)
        self.assets = assets_by_id(tenant=tenant, asset_ids=asset_ids)
        self._secrets: dict[str, ResolvedSecrets] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def asset(self, reference: dict[str, Any]) -> ResolvedTarget:
        """The target's asset: read with the step's, else asked for now (NotFound as ever)."""
        found = self.assets.get(str(reference.get("asset_id")))
        return found if found is not None else asset_resolve(tenant=self.tenant, target=reference)

    def secrets(
        self, target: ResolvedTarget | None, resolve: Callable[[], ResolvedSecrets]
    ) -> ResolvedSecrets:
        """The step's params and ``target``'s credential resolved: by ``resolve`` for the first
        target naming this credential, the same for the next (one at a time per credential)."""
        key = target.credential_ref.strip() if target is not None and target.credential_ref else ""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            known = self._secrets.get(key)
            if known is None:
                known = self._secrets[key] = resolve()
            return known

    def values(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(dict.fromkeys(v for r in self._secrets.values() for v in r.values))

    def drop(self) -> None:
        """The step's end: every resolved credential and param goes."""
        with self._lock:
            resolved, self._secrets = list(self._secrets.values()), {}
        for one in resolved:
            one.drop()
