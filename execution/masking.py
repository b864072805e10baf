"""The one masking function of docs/contract.md#secrets-and-masking, used by every sink (step output, error
messages, retry
and dead-letter reasons, events, API, WebSocket, logging). Callers use ``mask_text``,
``mask_capped`` and ``mask_data``; docs/contract.md#secrets-and-masking.

Layers, applied in this order:
1. the exact values of every secret resolved for the execution (``secrets=``), longest
   first so a value containing another is masked whole;
2. ``PATTERNS``: shapes of credentials that may appear without ever having been resolved
   (a token printed by a script, a URL with a password), plus the extra PII patterns
   switched on by ``MASKING_EXTRA_PATTERNS`` (card numbers by default);
3. in dicts, values under sensitive key names (``password``, ``api_key``, ...).

``mask_data`` walks a structure iteratively and stops at ``MAX_DEPTH``, so no stored value
(however deep) can make a list or a page fail. What is masked can always be stored: lone
surrogates and NUL characters become U+FFFD (UTF-8, PostgreSQL text), and a float that is not
finite becomes its JSON spelling as a string (``"NaN"``: jsonb has no NaN). A step printing a
NUL byte or a query returning ``'NaN'::float8`` made the worker's statement fail, the attempt
crash and its steps run again after the lease expired.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from execution.masking_patterns import EXTRA_PATTERNS, PATTERN_TABLE, PATTERNS, any_pattern_in

__all__ = [
    "EXTRA_PATTERNS",
    "MASK",
    "MAX_DEPTH",
    "PATTERNS",
    "PATTERN_TABLE",
    "TOO_DEEP",
    "active_secrets",
    "mask_capped",
    "mask_data",
    "mask_text",
    "secrets_forget",
    "secrets_of",
    "secrets_remember",
    "sensitive_key",
]

MASK = "***"
# Deeper levels of a structure are replaced by TOO_DEEP: the request guard refuses more than
# 32 levels, so only rows stored before it (or by a runner) ever reach this.
MAX_DEPTH = 64
TOO_DEEP = "[too deep]"
# A cut text never ends with this many characters (or more) of the start of a secret.
PARTIAL_PREFIX = 4

# Key names whose values are always masked in dicts. The long words match anywhere in the
# key (``dbpassword``, ``X-Api-Key``, ``accessToken``); the short ``pass``/``pwd`` only as a
# whole word of the key (``db_pass``, ``PWD``), so ``passed``, ``bypass`` or ``compass``
# keep their values.
SENSITIVE_KEYS = re.compile(
    r"(passw(or)?d|passphrase|secret|token|api[_-]?key|private[_-]?key|authorization|credential|"
    r"cookie|access[_-]?key|session[_-]?key|client[_-]?secret)"
    r"|(?<![a-z])(pass|pwd)s?(?![a-z])"
)
_CAMEL_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NUL = "\x00"


@functools.lru_cache(maxsize=4096)  # a few dozen key names come back in every body
def sensitive_key(key: str) -> bool:
    """Whether values under this dict key are always masked."""
    return SENSITIVE_KEYS.search(_CAMEL_BOUNDARY.sub(r"\1_\2", key).lower()) is not None


# --- Values resolved in this process -----------------------------------------------------
# Execution id -> the values resolved for it in this process. Held in memory only, so every
# sink of the execution (event, transition, dead letter, queue error) and the logging filter
# can mask them; forgotten when the execution leaves ``running`` (transition) and bounded so
# an attempt that never came back cannot grow it.
_REMEMBERED_EXECUTIONS = 256
_lock = threading.Lock()
_by_execution: OrderedDict[str, frozenset[str]] = OrderedDict()


def secrets_remember(*, execution_id: object, values: Iterable[str]) -> None:
    """Add resolved values to the execution's set (for every later sink and log line)."""
    key = str(execution_id)
    with _lock:
        _by_execution[key] = _by_execution.get(key, frozenset()) | {v for v in values if v}
        _by_execution.move_to_end(key)
        while len(_by_execution) > _REMEMBERED_EXECUTIONS:
            _by_execution.popitem(last=False)


def secrets_of(execution_id: object) -> tuple[str, ...]:
    """The values resolved for this execution in this process (empty elsewhere)."""
    with _lock:
        return tuple(_by_execution.get(str(execution_id), ()))


def secrets_forget(*, execution_id: object) -> None:
    with _lock:
        _by_execution.pop(str(execution_id), None)


def active_secrets() -> tuple[str, ...]:
    """Every value resolved in this process and not yet forgotten (the logging filter's set)."""
    with _lock:
        return tuple(set().union(*_by_execution.values())) if _by_execution else ()


# --- Masking -------------------------------------------------------------------------------


def _values(secrets: Iterable[str]) -> list[str]:
    # Every non-blank value, however short: ``secret set`` refuses short values, but other
    # backends may hold them, and a short value in clear is still a value in clear.
    return sorted({s for s in secrets if isinstance(s, str) and s.strip()}, key=len, reverse=True)


def _substitute(pattern: re.Pattern[str], text: str) -> str:
    if pattern.groups:
        return pattern.sub(lambda m: m.group(1) + MASK, text)
    return pattern.sub(MASK, text)


def _extra_patterns() -> list[Any]:
    from django.conf import settings

    if not settings.configured:  # a log record while the settings module is still importing
        return []
    return [EXTRA_PATTERNS[name] for name in settings.MASKING_EXTRA_PATTERNS]


def _mask(text: str, values: list[str], extras: list[Any]) -> str:
    if not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    if _NUL in text:
        text = text.replace(_NUL, "\ufffd")
    for value in values:
        text = text.replace(value, MASK)
    if any_pattern_in(text):
        for pattern in PATTERNS:
            text = _substitute(pattern, text)
    for extra in extras:
        text = extra.mask(text, MASK)
    return text


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask resolved secret values and credential-shaped substrings in ``text``."""
    if not text or not isinstance(text, str):
        return text
    return _mask(text, _values(secrets), _extra_patterns())


def _trim_partial_tail(text: str, values: list[str]) -> str:
    """Mask a tail that is the start of a secret (a cut made before this text reached us)."""
    for value in values:
        for size in range(min(len(value) - 1, len(text)), PARTIAL_PREFIX - 1, -1):
            if text.endswith(value[:size]):
                return text[:-size] + MASK
    return text


def mask_capped(text: str, secrets: Iterable[str] = (), *, cap: int) -> str:
    """Mask, then cap at ``cap`` characters: a cap never leaves part of a secret behind,
    neither a value cut by the cap nor one a runner cut before handing the text over."""
    if not text or not isinstance(text, str):
        return text
    values = _values(secrets)
    masked = _trim_partial_tail(_mask(text, values, _extra_patterns()), values)
    if len(masked) <= cap:
        return masked
    return _trim_partial_tail(masked[:cap], values)


def _mask_leaf(item: Any, values: list[str], extras: list[Any]) -> Any:
    if isinstance(item, str):
        return _trim_partial_tail(_mask(item, values, extras), values) if item else item
    if isinstance(item, float) and not math.isfinite(item):
        return json.dumps(item)  # "NaN", "Infinity", "-Infinity"
    return item


def _sensitive_value(key: Any, item: Any) -> Any:
    """The masked form of ``item`` under a sensitive key, or None when the key is not one."""
    if not isinstance(key, str) or not sensitive_key(key):
        return None
    if isinstance(item, (str, int, float)) and not isinstance(item, bool):
        return MASK
    if isinstance(item, (list, tuple)):
        return [MASK if isinstance(x, (str, int, float)) and not isinstance(x, bool) else x for x in item]
    return None


def mask_data(value: Any, secrets: Iterable[str] = (), *, max_depth: int = MAX_DEPTH) -> Any:
    """Mask strings anywhere in a JSON-like structure, and values under sensitive keys.

    Iterative (an explicit stack, no recursion), so any depth is safe; levels past
    ``max_depth`` are replaced by ``TOO_DEEP``.
    """
    values = _values(secrets)
    extras = _extra_patterns()
    if not isinstance(value, (dict, list, tuple)):
        return _mask_leaf(value, values, extras)
    root: dict[Any, Any] | list[Any] = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any, int]] = [(value, root, 1)]
    while stack:
        source, target, depth = stack.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            masked: Any
            sensitive = _sensitive_value(key, item) if isinstance(source, dict) else None
            if isinstance(sensitive, list):  # scalars masked, structures walked below
                masked = []
                stack.append((sensitive, masked, depth + 1))
            elif sensitive is not None:
                masked = sensitive
            elif isinstance(item, dict) and item.get("type") == "secret" and "path" in item:
                masked = {"type": "secret", "path": _mask_leaf(str(item["path"]), values, extras)}
            elif isinstance(item, (dict, list, tuple)):
                if depth >= max_depth:
                    masked = TOO_DEEP
                else:
                    masked = {} if isinstance(item, dict) else []
                    stack.append((item, masked, depth + 1))
            else:
                masked = _mask_leaf(item, values, extras)
            if isinstance(target, dict):
                target[_mask_leaf(key, values, extras) if isinstance(key, str) else key] = masked
            else:
                target.append(masked)
    return root
