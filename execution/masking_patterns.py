"""The credential shapes ``execution.masking`` masks, and the extra PII patterns a setting
switches on (``MASKING_EXTRA_PATTERNS``; docs/secrets.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

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


def _scoped(pattern: re.Pattern[str]) -> str:
    source = pattern.pattern
    if source.startswith("(?i)"):
        return f"(?i:{source[4:]})"
    return f"(?:{source})"


# Any of PATTERNS, in one search: most text matches none, and one search of the
# alternation costs a fraction of trying each pattern (the masking of every sink runs it).
ANY_PATTERN: re.Pattern[str] = re.compile("|".join(_scoped(p) for p in PATTERNS))

# name -> literal fragments, in lower case, one of which every match of the pattern contains
# (whatever its case where the pattern ignores case). The one search of ANY_PATTERN still
# costs 10-50 us on a short string (each alternative is tried at each position); a search of
# these fragments 1-3 us, and most text (ids, statuses, timestamps, links) has none.
PATTERN_FRAGMENTS: dict[str, tuple[str, ...]] = {
    "private_key_block": ("-----begin ",),
    "credentialed_url": ("://",),
    "bearer_header": ("bearer",),
    "basic_auth_header": ("basic",),
    "jwt": ("eyj",),
    "aws_access_key_id": ("akia", "asia", "agpa", "aida", "aroa", "anpa"),
    "aws_secret_access_key": ("aws",),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "slack_token": ("xox",),
    "slack_webhook": ("hooks.slack.com/services/",),
    "stripe_like_key": ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
    "google_api_key": ("aiza",),
    "password_assignment": ("pass", "pwd"),
    "token_assignment": ("token", "secret", "api_key", "api-key", "apikey", "access"),
    "dsn_password": ("password",),
    "x_api_key_header": ("x-api-", "x-auth-"),
}
_ANY_FRAGMENT = re.compile(
    "|".join(re.escape(f) for f in sorted({f for fragments in PATTERN_FRAGMENTS.values() for f in fragments}))
)


def any_pattern_in(text: str) -> bool:
    """Whether one of PATTERNS matches somewhere in ``text`` (ANY_PATTERN's answer). ASCII
    text without any of the fragments is answered without the search: in ASCII, ignoring
    case is ``lower()``; other text (where ``(?i)`` also folds e.g. U+017F to ``s``) is searched."""
    if text.isascii() and not _ANY_FRAGMENT.search(text.lower()):
        return False
    return ANY_PATTERN.search(text) is not None


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        number = int(char)
        if position % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


@dataclass(frozen=True)
class ExtraPattern:
    """A PII shape: matches of ``pattern`` that pass ``check`` are masked whole."""

    pattern: re.Pattern[str]
    check: Callable[[str], bool]

    def mask(self, text: str, mask: str) -> str:
        return self.pattern.sub(lambda m: mask if self.check(m.group(0)) else m.group(0), text)


EXTRA_PATTERNS: dict[str, ExtraPattern] = {
    # 13-19 digits, optionally grouped by spaces or dashes, passing the Luhn check (so an
    # order number or a timestamp of the same length is kept), standing alone: not glued to
    # a letter, so the digit runs of a UUID or a hash are kept.
    "card_number": ExtraPattern(
        re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"),
        lambda m: luhn_valid(re.sub(r"\D", "", m)),
    ),
    # Country code, check digits, 11-30 alphanumerics (grouped by 4 or not), mod-97 checked.
    "iban": ExtraPattern(
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
        iban_valid,
    ),
    "email": ExtraPattern(
        re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
        lambda m: True,
    ),
}
