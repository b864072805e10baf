"""APPROVAL_POLICY_MINIMUMS from the environment: parsed at start, refused loudly when wrong."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.processes import REPO_ROOT

PRINT = "from django.conf import settings; import django; django.setup(); print(settings.APPROVAL_POLICY_MINIMUMS)"


def _run(value: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "opsconductor.settings"
    env.pop("APPROVAL_POLICY_MINIMUMS", None)
    if value is not None:
        env["APPROVAL_POLICY_MINIMUMS"] = value
    return subprocess.run(
        [sys.executable, "-c", PRINT], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_default_is_the_policy_of_section_2() -> None:
    out = _run(None)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'prod:deploy': 2, 'prod:modify': 1, 'staging:deploy': 1}"


def test_environment_overrides_the_table() -> None:
    out = _run("prod:deploy=3, dev:modify=1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'prod:deploy': 3, 'dev:modify': 1}"


def test_a_bad_entry_stops_the_process_with_its_reason() -> None:
    for bad, reason in (("prod:delete=1", "is not <environment>"), ("prod:deploy=5", "must be 0-3")):
        out = _run(bad)
        assert out.returncode != 0
        assert reason in out.stderr
