"""The repository stands on its own: what it cites is inside it, and its settings are listed.

Someone who clones the repository gets only the repository, so no tracked file may point
at a file outside it, at a tracker's numbered issues, or at contract sections by bare
numbers (the contract is docs/contract.md, cited by anchor). And every environment variable
the code reads is listed in .env.example, with nothing listed that nothing reads.
"""

from __future__ import annotations

import re
import subprocess

from tests.support.processes import REPO_ROOT

# Spelled in pieces so this file does not name what it forbids.
OUTSIDE = [
    re.compile(re.escape("../" + "shared")),
    re.compile(r"\b(?:SPEC|STYLE|DESIGN)" + re.escape(".md")),
    re.compile(r"(?<![\w.~-])/(?:work|home|root|Users)/[\w.-]+"),
    re.compile(r"\bissue #?\d+\b", re.IGNORECASE),
    re.compile("\u00a7"),  # a bare section sign: cite docs/contract.md#<anchor> instead
]
HELPER = re.compile(r'\benv_(?:str|bool|int|float|list)\(\s*"([A-Z][A-Z0-9_]*)"')
READS = [
    re.compile(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]*)"'),
    re.compile(r'os\.getenv\(\s*"([A-Z][A-Z0-9_]*)"'),
    re.compile(r'os\.environ\[\s*"([A-Z][A-Z0-9_]*)"\s*\](?!\s*=(?!=))'),
    re.compile(r'"([A-Z][A-Z0-9_]*)"\s+(?:not\s+)?in\s+os\.environ'),
]


def tracked(*patterns: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", *patterns], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [name for name in out.split("\0") if name]


def _text(name: str) -> str | None:
    try:
        return (REPO_ROOT / name).read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None  # binary, or deleted in the work tree


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = []
    for name in tracked():
        text = _text(name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for pattern in OUTSIDE:
                match = pattern.search(line)
                if match:
                    offenders.append(f"{name}:{number}: {match.group(0)!r} in {line.strip()[:100]!r}")
    assert offenders == [], "\n".join(offenders)


def test_the_outside_reference_check_catches_each_kind() -> None:
    samples = [
        "see ../" + "shared/x",
        "see SPEC" + ".md",
        "see STYLE" + ".md",
        "rules in /wo" + "rk/main/README",
        "fixed in Iss" + "ue 12",
        "fixed in iss" + "ue #3",
        "as \u00a74 says",
    ]
    for sample in samples:
        assert any(p.search(sample) for p in OUTSIDE), sample
    for fine in ("docs/contract.md#rbac", "/api/v1/executions/", "a tissue 5", "/usr/sbin/sshd"):
        assert not any(p.search(fine) for p in OUTSIDE), fine


# The operating system's own variables, passed through to child processes, not settings.
SYSTEM = {"PATH", "HOME", "LANG", "USER", "TMPDIR", "XDG_CONFIG_HOME"}


def environment_reads() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name in tracked("*.py"):
        text = _text(name) or ""
        # Test modules call the typed helpers on made-up names (tests/opsconductor/test_env.py):
        # only their direct environment reads count.
        patterns = READS if name.startswith("tests/") else [*READS, HELPER]
        for pattern in patterns:
            for match in pattern.finditer(text):
                if match.group(1) in SYSTEM:
                    continue
                found.setdefault(match.group(1), set()).add(name)
    return found


def test_env_example_lists_exactly_the_variables_the_code_reads() -> None:
    example = (REPO_ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    reads = environment_reads()
    missing = {name: sorted(files) for name, files in reads.items() if name not in listed}
    assert missing == {}, f"read by the code but not in .env.example: {missing}"
    assert listed - set(reads) == set(), "listed in .env.example but read by nothing"
    for name in listed:  # each has its comment right above it (or in the block it belongs to)
        block = example.split(f"\n{name}=")[0].rstrip().splitlines()
        assert block and (block[-1].startswith("#") or re.match(r"^[A-Z][A-Z0-9_]*=", block[-1])), name


def test_environment_scan_sees_the_helpers_and_direct_reads() -> None:
    reads = environment_reads()
    assert "opsconductor/settings.py" in reads["DATABASE_URL"]  # a typed helper
    assert "tests/support/sshd.py" in reads["OPS_SSHD"]  # a direct read in the tests


def test_ci_runs_exactly_readme_command_2() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("**2. Run the whole test suite")[1]
    command = section.split("```sh\n")[1].split("\n```")[0].strip()
    ci = (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == command
    assert "--cov" in command
