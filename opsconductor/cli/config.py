"""Where ``opsctl`` finds its server and token (docs/cli.md#configuration).

Order: ``--url``/``--token``, then ``OPSCTL_URL``/``OPSCTL_TOKEN``, then the config file
(``--config``, ``OPSCTL_CONFIG`` or ``~/.config/opsctl/config.toml``). The file holds a token,
so it is refused unless only its owner can read it (mode 0600 or stricter), as ssh does.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path


class ConfigProblem(Exception):
    """The configuration cannot be used; the message is one line for the terminal."""


@dataclass(frozen=True)
class Settings:
    url: str
    token: str


def default_config_path() -> Path:
    explicit = os.environ.get("OPSCTL_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "opsctl" / "config.toml"


def read_config_file(path: Path) -> dict[str, str]:
    """``url`` and ``token`` from a TOML file only its owner may read; {} when it does not exist."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigProblem(f"config file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(info.st_mode)
        raise ConfigProblem(
            f"config file {path} is accessible by others (mode {mode:04o}); "
            f"it holds a token: chmod 600 {path}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigProblem(f"config file {path}: {exc}") from None
    found: dict[str, str] = {}
    for key in ("url", "token"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigProblem(f"config file {path}: {key} must be a string")
        found[key] = value
    return found


def settings_resolve(*, url: str | None, token: str | None, config: str | None) -> Settings:
    """The URL and token to use, or ConfigProblem naming what is missing."""
    url = url or os.environ.get("OPSCTL_URL") or None
    token = token or os.environ.get("OPSCTL_TOKEN") or None
    if not (url and token):
        path = Path(config) if config else default_config_path()
        if config and not path.exists():
            raise ConfigProblem(f"config file {path} does not exist")
        from_file = read_config_file(path)
        url = url or from_file.get("url")
        token = token or from_file.get("token")
    if not url:
        raise ConfigProblem("no server URL: set OPSCTL_URL, pass --url, or put url in the config file")
    if not token:
        raise ConfigProblem("no API token: set OPSCTL_TOKEN, pass --token, or put token in the config file")
    return Settings(url=url, token=token)
