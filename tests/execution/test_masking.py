"""The one masking function (§10): exact values, one test per pattern, sensitive keys."""

from __future__ import annotations

import pytest

from execution.masking import MASK, PATTERN_TABLE, mask_data, mask_text

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
