"""The one masking function (docs/contract.md#secrets-and-masking): exact values, one test per pattern, sensitive keys."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from execution.masking import MASK, MAX_DEPTH, PATTERN_TABLE, TOO_DEEP, mask_capped, mask_data, mask_text

# name -> (text containing a credential, the credential, what must survive)
CASES: dict[str, tuple[str, str, str]] = {
    "private_key_block": (
        "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----\nok",
        "b3BlbnNzaC1rZXktdjEAAAA",
        "ok",
    ),
    "credentialed_url": ("DATABASE_URL=postgres://app:s3cr3tPass@db:5432/x", "s3cr3tPass", "postgres://app:"),
    "bearer_header": (
        "Authorization: Bearer abcDEF123.xyz-789",
        "abcDEF123.xyz-789",
        "Authorization: Bearer",
    ),
    "basic_auth_header": (
        "Authorization: Basic dXNlcjpodW50ZXIy",
        "dXNlcjpodW50ZXIy",
        "Authorization: Basic",
    ),
    "jwt": (
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "end",
    ),
    "aws_access_key_id": ("aws key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE", "used"),
    "aws_secret_access_key": (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key",
    ),
    "github_token": ("gh auth ghp_abcdefghijklmnopqrstuvwxyz0123456789 done", "ghp_abcdefghijklmnop", "done"),
    "slack_token": ("SLACK xoxb-123456789012-abcdefABCDEF ok", "xoxb-123456789012", "ok"),
    "slack_webhook": (
        "post to https://hooks.slack.com/services/T000/B000/XXXXXXXX now",
        "T000/B000/XXXXXXXX",
        "now",
    ),
    "stripe_like_key": ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc ok", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "ok"),
    "google_api_key": (
        "k=AIzaSyA1234567890abcdefghijklmnopqrstuv x",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "x",
    ),
    "password_assignment": ('{"password": "hunter2!"} and pwd=letmein', "hunter2!", '"password"'),
    "token_assignment": ("api_key=zzz111yyy222 and refresh_token: qqq999", "zzz111yyy222", "api_key="),
    "dsn_password": ("host=db user=app password 0penSesame dbname=x", "0penSesame", "dbname=x"),
    "x_api_key_header": ("X-API-Key: k-5566778899", "k-5566778899", "X-API-Key:"),
}


def test_at_least_thirteen_patterns_each_tested() -> None:
    assert len(PATTERN_TABLE) >= 13
    assert set(CASES) == set(PATTERN_TABLE)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pattern(name: str) -> None:
    text, credential, survivor = CASES[name]
    # Each pattern on its own masks its case (not only thanks to another pattern).
    assert credential in text
    alone = PATTERN_TABLE[name]
    matched = alone.search(text)
    assert matched is not None, f"{name} does not match its example"
    masked = mask_text(text)
    assert credential not in masked and MASK in masked
    assert survivor in masked


def test_second_token_assignment_also_masked() -> None:
    assert "qqq999" not in mask_text("api_key=zzz111yyy222 and refresh_token: qqq999")


def test_exact_values_longest_first() -> None:
    masked = mask_text("a=rabbit-hole b=rabbit c=ok", ["rabbit", "rabbit-hole"])
    assert masked == "a=*** b=*** c=ok"


def test_ordinary_text_is_untouched() -> None:
    text = "nginx: configuration file /etc/nginx/nginx.conf test is successful (200 OK, 12 ms)"
    assert mask_text(text) == text


def test_mask_data_keys_values_and_references() -> None:
    data = {
        "headers": {"Authorization": "Basic abc", "Accept": "json"},
        "db_password": "p",
        "tokens": ["t1", "t2"],
        "enabled_token": True,
        "nested": [{"stdout": "the value is canary-value-42"}],
        "env": {"API_TOKEN": {"type": "secret", "path": "db:acme/deploy-token"}},
        "count": 3,
    }
    masked = mask_data(data, ["canary-value-42"])
    assert masked["headers"] == {"Authorization": MASK, "Accept": "json"}
    assert masked["db_password"] == MASK and masked["tokens"] == [MASK, MASK]
    assert masked["enabled_token"] is True and masked["count"] == 3
    assert masked["nested"][0]["stdout"] == "the value is ***"
    assert masked["env"]["API_TOKEN"] == {"type": "secret", "path": "db:acme/deploy-token"}


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "DB_PASSWORD",
        "dbpassword",
        "mysqlPassword",
        "db_pass",
        "PWD",
        "X-Api-Key",
        "accessToken",
        "client_secret",
        "cookies",
    ],
)
def test_sensitive_key_names_are_masked(key: str) -> None:
    assert mask_data({key: "plain-value", "other": "plain-value"}) == {key: MASK, "other": "plain-value"}


@pytest.mark.parametrize("key", ["passed", "bypass", "compass", "passenger", "failed"])
def test_words_that_merely_contain_a_sensitive_word_are_kept(key: str) -> None:
    assert mask_data({key: 3, "note": "ok"}) == {key: 3, "note": "ok"}


# --- mask before cap, short values, PII patterns, any depth ---------------------------------

SECRET = "Qz7K-straddling-the-cap-0123456789"


@pytest.mark.parametrize("offset", [10_200, 10_214, 10_228, 10_236, 10_239])
def test_cap_never_keeps_four_characters_of_a_secret(offset: int) -> None:
    text = "a" * offset + SECRET + "b" * 500
    capped = mask_capped(text, [SECRET], cap=10_240)
    assert len(capped) <= 10_240 + len(MASK) and SECRET[:4] not in capped
    # A text a runner already cut inside the value (so it is not whole any more).
    cut = mask_capped(text[:10_240], [SECRET], cap=10_240)
    assert SECRET[:4] not in cut


def test_short_values_are_masked_too() -> None:
    assert mask_text("pin=ab; user=x7", ["ab", "x7"]) == "pin=***; user=***"


def test_card_numbers_masked_by_default_only_when_luhn_valid() -> None:
    assert mask_text("paid with 4111 1111 1111 1111 ok") == f"paid with {MASK} ok"
    assert mask_text("card 5500-0000-0000-0004.") == f"card {MASK}."
    assert mask_text("order 4111111111111112 ok") == "order 4111111111111112 ok"  # Luhn fails
    # A UUID whose digit run "13-4123-8123-456" would pass the Luhn check.
    uuid = "4dc2996b-cb13-4123-8123-456ae1e0da16"
    assert mask_text(f"execution {uuid}") == f"execution {uuid}"


def test_iban_and_email_are_settings(settings: Any) -> None:
    text = "IBAN GB82 WEST 1234 5698 7654 32, mail ops@example.com"
    assert mask_text(text) == text
    settings.MASKING_EXTRA_PATTERNS = ("card_number", "iban", "email")
    assert mask_text(text) == f"IBAN {MASK}, mail {MASK}"
    assert mask_text("GB82 WEST 1234 5698 7654 33") == "GB82 WEST 1234 5698 7654 33"  # mod-97 fails


def test_unknown_extra_pattern_stops_the_settings() -> None:
    import subprocess
    import sys

    from tests.support.processes import subprocess_env

    child = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=subprocess_env(DJANGO_SETTINGS_MODULE="opsconductor.settings", MASKING_EXTRA_PATTERNS="ssn"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode != 0 and "MASKING_EXTRA_PATTERNS" in child.stderr


def test_mask_data_is_iterative_and_depth_capped() -> None:
    deep: Any = "leaf canary-value-42"
    for _ in range(100_000):
        deep = {"k": [deep]}
    masked = mask_data(deep, ["canary-value-42"])
    depth = 0
    node = masked
    while isinstance(node, (dict, list)):
        node = node["k"] if isinstance(node, dict) else node[0]
        depth += 1
    assert depth == MAX_DEPTH and node == TOO_DEEP
    assert mask_data({"a": {"b": "canary-value-42"}}, ["canary-value-42"]) == {"a": {"b": MASK}}


def test_lone_surrogates_become_replacement_characters() -> None:
    masked = mask_data({"name": "bad \ud800 name"})
    assert masked == {"name": "bad \ufffd name"}
    masked["name"].encode()


def test_nul_characters_and_non_finite_floats_become_storable() -> None:
    """PostgreSQL text takes no NUL and jsonb no NaN: what masking returns is always stored."""
    masked = mask_data(
        {"k\x00": "a\x00b", "nan": float("nan"), "inf": [float("inf"), -float("inf")], "n": 1.5}
    )
    assert masked == {"k\ufffd": "a\ufffdb", "nan": "NaN", "inf": ["Infinity", "-Infinity"], "n": 1.5}
    json.dumps(masked, allow_nan=False)
    assert mask_text("x\x00y") == "x\ufffdy"


def test_streamed_output_holds_back_a_split_secret(db: Any, tenant: Any, operator: Any) -> None:
    from execution.models import ExecutionEvent
    from execution.services.progress import step_output_flush, step_output_record
    from tests.factories import ExecutionFactory

    execution = ExecutionFactory(tenant=tenant, actor=operator)
    for chunk in ("line with " + SECRET[:6], SECRET[6:20], SECRET[20:] + " end\n"):
        step_output_record(execution=execution, step_index=0, stream="stdout", text=chunk, secrets=(SECRET,))
        time.sleep(0.3)  # each chunk in its own flush window (the timer flushes it)
    step_output_flush(execution=execution, step_index=0)
    texts = "".join(
        e.details["text"]
        for e in ExecutionEvent.objects.filter(execution=execution, event_type="step_output")
    )
    assert texts == f"line with {MASK} end\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_one_search_prefilter_finds_every_pattern_alone(name: str) -> None:
    """mask_text runs the patterns only when ANY_PATTERN finds one: it must find each of them,
    with its own flags (case-insensitive ones in another case too), inside other text."""
    from execution.masking_patterns import ANY_PATTERN

    text = CASES[name][0]
    for variant in (text, f"prefix {text} suffix", f"line\n{text}\n"):
        assert ANY_PATTERN.search(variant), variant
    if PATTERN_TABLE[name].pattern.startswith("(?i)"):
        swapped = text.swapcase()
        assert bool(ANY_PATTERN.search(swapped)) == bool(PATTERN_TABLE[name].search(swapped))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_match_of_a_pattern_holds_one_of_its_fragments(name: str) -> None:
    """any_pattern_in skips ANY_PATTERN's search for ASCII text holding none of the patterns'
    fragments: each pattern's matches (in either case where it ignores case) must hold one."""
    from execution.masking_patterns import PATTERN_FRAGMENTS, any_pattern_in

    assert set(PATTERN_FRAGMENTS) == set(PATTERN_TABLE)
    text = CASES[name][0]
    variants = [text, f"prefix {text} suffix"]
    if PATTERN_TABLE[name].pattern.startswith("(?i)"):
        variants += [text.swapcase(), text.upper(), text.lower()]
    for variant in variants:
        matches = [m.group(0).lower() for m in PATTERN_TABLE[name].finditer(variant)]
        assert all(any(f in m for f in PATTERN_FRAGMENTS[name]) for m in matches), (variant, matches)
        assert any_pattern_in(variant) == _one_search(variant), variant


def _one_search(text: str) -> bool:
    from execution.masking_patterns import ANY_PATTERN

    return ANY_PATTERN.search(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "queued",
        "2026-12-03T18:04:56.123456+00:00",
        "/api/v1/executions/0b7c1f5e-3e0a-4b8e-9b1a-2f3c4d5e6f70/events/",
        "a passing test, a bypass, a compass",  # fragments without a credential
        "token=abc",
        "pa\u017f\u017fword=hunter2",  # U+017F folds to "s" under (?i): not ASCII, searched
        "x-api-\u212aey: k-5566778899",  # the Kelvin sign folds to "k"
    ],
)
def test_the_fragment_check_answers_as_the_one_search(text: str) -> None:
    from execution.masking_patterns import any_pattern_in

    assert any_pattern_in(text) == _one_search(text), text
