"""The table of step types is complete for every thread, also the first ones of a process."""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import subprocess_env

FIRST_LOOKUPS = """
import threading, django
django.setup()
from execution.runners.registry import canonical_type
barrier = threading.Barrier(32)
seen = []
def look():
    barrier.wait()
    seen.append(canonical_type("noop"))
threads = [threading.Thread(target=look) for _ in range(32)]
[t.start() for t in threads]
[t.join() for t in threads]
print(sorted(set(map(str, seen))))
"""


def test_concurrent_first_lookups_in_a_fresh_process_all_find_the_step_type() -> None:
    # Web requests run in threads: one used to see an empty table while another loaded it.
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", FIRST_LOOKUPS],
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip().splitlines()[-1] == "['noop']", out.stdout
