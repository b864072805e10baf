"""The one masking function of §10, used by every sink (step output, events, API, WebSocket,
logging). Callers only use ``mask_text``/``mask_data``.

Three layers, applied in this order:
1. the exact values of every secret resolved for the execution (``secrets=``), longest
   first so a value containing another is masked whole;
2. ``PATTERNS``: shapes of credentials that may appear without ever having been resolved
   (a token printed by a script, a URL with a password);
3. in dicts, values under sensitive key names (``password``, ``api_key``, ...).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"

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


def sensitive_key(key: str) -> bool:
    """Whether values under this dict key are always masked."""
    return SENSITIVE_KEYS.search(_CAMEL_BOUNDARY.sub(r"\1_\2", key).lower()) is not None


# name -> pattern. A pattern with a group keeps group 1 (the prefix, e.g. "Bearer ") and masks
# the rest of the match; a pattern without a group is masked whole. Order matters: whole
# blocks (private keys) before their fragments, credentialed URLs before key=value pairs.
PATTERN_TABLE: dict[str, re.Pattern[str]] = {
    "private_key_block": re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----"
    ),
    "credentialed_url": re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?=@)"),
    "bearer_header": re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"),
    "basic_auth_header": re.compile(r"(?i)(\bbasic\s+)[A-Za-z0-9+/=]{8,}"),
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    "aws_access_key_id": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),
    "aws_secret_access_key": re.compile(
        r"(?i)(aws_?secret_?(?:access_?)?key[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{40}"
    ),
    "github_token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
    "slack_token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "slack_webhook": re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"),
    "stripe_like_key": re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    "google_api_key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "password_assignment": re.compile(r"(?i)(\b(?:pass(?:word|wd)?|pwd)[\"']?\s*[=:]\s*[\"']?)[^\s\"',;&]+"),
    "token_assignment": re.compile(
        r"(?i)(\b(?:[a-z0-9_]*token|secret|client_secret|api[_-]?key|apikey|access[_-]?key)"
        r"[\"']?\s*[=:]\s*[\"']?)[^\s\"',;&]+"
    ),
    "dsn_password": re.compile(r"(?i)(\bpassword\s+)\S+"),
    "x_api_key_header": re.compile(r"(?i)(\bx-(?:api|auth)-(?:key|token)\s*:\s*)\S+"),
}
PATTERNS: list[re.Pattern[str]] = list(PATTERN_TABLE.values())


# Values resolved in this process and still in use (a running step's secrets). Held in
# memory only, so the logging filter can mask them in any log line; removed when the step
# ends (``active_secrets_forget``).
_active_lock = threading.Lock()
_active: dict[str, int] = {}


def active_secrets_remember(values: Iterable[str]) -> None:
    """Register resolved values for the logging filter (reference-counted)."""
    with _active_lock:
        for value in values:
            if value:
                _active[value] = _active.get(value, 0) + 1


def active_secrets_forget(values: Iterable[str]) -> None:
    with _active_lock:
        for value in values:
            count = _active.get(value, 0) - 1
            if count <= 0:
                _active.pop(value, None)
            else:
                _active[value] = count


def active_secrets() -> tuple[str, ...]:
    with _active_lock:
        return tuple(_active)


def _substitute(pattern: re.Pattern[str], text: str) -> str:
    if pattern.groups:
        return pattern.sub(lambda m: m.group(1) + MASK, text)
    return pattern.sub(MASK, text)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask resolved secret values and credential-shaped substrings in ``text``."""
    if not text or not isinstance(text, str):
        return text
    for value in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern in PATTERNS:
        text = _substitute(pattern, text)
    return text


def mask_data(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Mask strings anywhere in a JSON-like structure, and values under sensitive keys."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(item, dict) and item.get("type") == "secret" and "path" in item:
                out[key] = {"type": "secret", "path": mask_text(str(item["path"]), secrets)}
            elif (
                isinstance(key, str)
                and sensitive_key(key)
                and isinstance(item, (str, int, float))
                and not isinstance(item, bool)
            ):
                out[key] = MASK
            elif isinstance(key, str) and sensitive_key(key) and isinstance(item, (list, tuple)):
                out[key] = [MASK if isinstance(x, (str, int, float)) else mask_data(x, secrets) for x in item]
            else:
                out[key] = mask_data(item, secrets)
        return out
    if isinstance(value, (list, tuple)):
        return [mask_data(item, secrets) for item in value]
    return value
