"""The allow-list and the openings of one tenant in one environment (docs/security.md
"Outbound connections"), read once per check.

Two lists, two owners:
- **host patterns** say which names (or addresses) a tenant's URLs and probes may name:
  the operator's ``HTTP_OUTBOUND_ALLOWLIST`` and the tenant's outbound allow rules, which a
  tenant admin edits;
- **openings** say which special networks (loopback, private, link-local ...) may be
  reached at all: the operator's ``OUTBOUND_OPEN_NETWORKS`` and the tenant's rules that
  open special addresses, which only a superuser sets (``OutboundAllowRule.validate_editor``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from execution.outbound.addresses import Opening, parse_opening, pattern_matches

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboundRules:
    patterns: tuple[str, ...]
    openings: tuple[Opening, ...]

    def lists(self, host: str) -> bool:
        return any(pattern_matches(pattern, host) for pattern in self.patterns)


def _operator_openings() -> list[Opening]:
    # Checked at settings load (a bad value stops the process); a test may set anything.
    return [parse_opening(text) for text in settings.OUTBOUND_OPEN_NETWORKS]


def outbound_rules(*, tenant: str | None, environment: str = "") -> OutboundRules:
    """The rules that apply to ``tenant`` (a slug; None: the operator's only) in
    ``environment`` (a rule without an environment applies to every one)."""
    patterns = [p.lower() for p in settings.HTTP_OUTBOUND_ALLOWLIST]
    openings = _operator_openings()
    if tenant is not None:
        from execution.models import OutboundAllowRule

        rows = OutboundAllowRule.objects.filter(
            tenant__slug=tenant, environment__in=[environment, ""]
        ).values_list("host_pattern", "opens_special")
        for pattern, opens_special in rows:
            if not opens_special:
                patterns.append(pattern.lower())
                continue
            try:
                opening = parse_opening(pattern)
            except ValueError:
                # clean() refuses it; a row written around the model opens nothing.
                logger.warning("outbound rule %r of tenant %s opens nothing: not a network", pattern, tenant)
                continue
            openings.append(opening)
            patterns.append(str(opening.network))  # it lists its own addresses too
    return OutboundRules(patterns=tuple(patterns), openings=tuple(openings))
