"""Debian packages the suite needs, installed with apt-get when missing (as root), saying so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def debian_program(program: str, package: str, *, why: str) -> str:
    """The path of ``program``, installing Debian's ``package`` first when it is missing."""
    found = shutil.which(program)
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(f"{program} is missing and cannot be installed here (needs root and apt-get)")
    print(f"{why}: installing Debian's {package} with apt-get ...", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-q", package], env=env, capture_output=True, text=True
    )
    found = shutil.which(program)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"could not install {package}: {result.stderr[-500:]}")
    return found
