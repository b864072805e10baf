"""The web process loads the URLconf and the step types when it loads the application
(opsconductor/asgi.py), not during its first requests, which waited for those imports."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import opsconductor.asgi
print("opsconductor.urls" in sys.modules, "execution.runners.sql" in sys.modules)
"""


def test_loading_the_application_imports_the_urlconf_and_the_step_types() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"], done.stdout
