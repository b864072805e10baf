"""The one masking function of §10, used by every sink (step output, events, API, WebSocket,
logging). Issue 6 extends the pattern table; callers only use ``mask_text``/``mask_data``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***"

# Key names whose values are always masked in dicts.
SENSITIVE_KEYS = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|authorization|credential|cookie)", re.I
)

PATTERNS: list[re.Pattern[str]] = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(password\s*[=:]\s*)\S+"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
]


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    if not text:
        return text
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern in PATTERNS:
        # A pattern with a group keeps its prefix ("Bearer ") and masks the rest.
        text = pattern.sub((lambda m: m.group(1) + MASK) if pattern.groups else MASK, text)
    return text


def mask_data(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Mask strings anywhere in a JSON-like structure, and values under sensitive keys."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and SENSITIVE_KEYS.search(key) and isinstance(item, (str, int, float)):
                out[key] = MASK
            elif isinstance(item, dict) and item.get("type") == "secret" and "path" in item:
                out[key] = item  # a reference, not a value: safe to show
            else:
                out[key] = mask_data(item, secrets)
        return out
    if isinstance(value, (list, tuple)):
        return [mask_data(item, secrets) for item in value]
    return value
