"""The development ``SECRET_KEY``: random, made once per state directory, kept there (0600).

A key written in the source is everyone's key: anybody could sign a session cookie for a
development server reached over a network, and the development secrets' encryption key is
derived from it (docs/secrets.md). Production (``OPS_DEV=false``) must set ``SECRET_KEY``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile

from opsconductor.embedded_pg import state_dir

FILE_NAME = "secret_key"


def dev_secret_key() -> str:
    """The key in ``<state dir>/secret_key``, created atomically by the first process that
    needs it (web, workers and test processes sharing a state directory read the same one)."""
    path = state_dir() / FILE_NAME
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")
    try:
        with os.fdopen(fd, "w") as fh:  # mkstemp: mode 0600
            fh.write(secrets.token_urlsafe(50) + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs wins
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_text().strip()
