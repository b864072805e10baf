"""A real OpenSSH server on loopback for the SSH/SFTP tests.

``ensure_sshd()`` installs Debian's ``openssh-server`` with apt-get when /usr/sbin/sshd is
missing (as root) and says so on stderr, like tests/support/browser.py does for chromium.
``LoopbackSshd`` starts ``sshd -D -e -f <config>`` on a free high port with a temporary host
key and a temporary authorized key (no system service, nothing outside its temp directory
except sshd's privilege-separation directory /run/sshd when run as root).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.processes import free_port, wait_for_port

SSHD = os.environ.get("OPS_SSHD", "/usr/sbin/sshd")


def ensure_sshd() -> str:
    if os.path.exists(SSHD) and shutil.which("ssh-keygen"):
        return SSHD
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(f"{SSHD} is missing and cannot be installed here (needs root and apt-get)")
    print("ssh tests: installing Debian's openssh-server with apt-get ...", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-q", "openssh-server"], env=env, capture_output=True, text=True
    )
    if result.returncode != 0 or not os.path.exists(SSHD):
        raise RuntimeError(f"could not install openssh-server: {result.stderr[-500:]}")
    return SSHD


def keygen(path: Path, passphrase: str = "") -> str:
    """An ed25519 key pair at ``path``; returns the private key text (OpenSSH format)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "opsconductor-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.read_text()


class LoopbackSshd:
    def __init__(self, log_level: str = "ERROR") -> None:
        """``log_level`` INFO logs each login (``logins()``)."""
        self.binary = ensure_sshd()
        self.dir = Path(tempfile.mkdtemp(prefix="opsc-sshd-"))
        self.port = free_port()
        self.username = getpass.getuser()
        keygen(self.dir / "host_key")
        self.host_public_key = (self.dir / "host_key.pub").read_text().split(" ")[:2]
        self.client_private_key = keygen(self.dir / "client_key")
        self.authorized = self.dir / "authorized_keys"
        self.authorized.write_text((self.dir / "client_key.pub").read_text())
        self.authorized.chmod(0o600)
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.dir / 'host_key'}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized}",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "Subsystem sftp internal-sftp",
                    f"LogLevel {log_level}",
                    "",
                ]
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def listen_also(self, addresses: list[str]) -> LoopbackSshd:
        """Listen on more loopback addresses (127.0.0.x) besides 127.0.0.1, before start()
        (at most 15: sshd's MAX_LISTEN_SOCKS is 16); ``$SSH_CONNECTION`` tells a command
        which address it was reached at."""
        with self.config.open("a") as fh:
            fh.write("".join(f"ListenAddress {a}\n" for a in addresses))
            fh.write("MaxStartups 200\nMaxSessions 50\n")
        return self

    def logins(self) -> int:
        """Connections that logged in so far (needs log_level INFO): each is a TCP connection
        with its key exchange and authentication."""
        return self._log().count("Accepted publickey for ")

    def open_connections(self) -> int:
        """Connections open now: sshd forks one process per connection."""
        assert self.proc is not None
        try:
            return len(psutil.Process(self.proc.pid).children())
        except psutil.NoSuchProcess:
            return 0

    def _log(self) -> str:
        path = self.dir / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def add_authorized_key(self, public_key_line: str) -> None:
        with self.authorized.open("a") as fh:
            fh.write(public_key_line.strip() + "\n")

    def start(self) -> LoopbackSshd:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        self.proc = subprocess.Popen(
            [self.binary, "-D", "-e", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "sshd.log", "wb"),  # noqa: SIM115 - lives as long as the server
        )
        try:
            wait_for_port(self.port, timeout=30)
        except TimeoutError:
            log = (self.dir / "sshd.log").read_text()[-800:]  # before stop() removes the directory
            self.stop()
            raise RuntimeError(f"sshd did not start: {log}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class LoopbackFleet:
    """``count`` ssh targets at distinct loopback addresses 127.0.0.2.. (for fleet steps and
    bench/fleet.py): one sshd per 15 addresses. ``endpoints[i]``: (address, server)."""

    PER_SERVER = 15

    def __init__(self, count: int, log_level: str = "ERROR") -> None:
        addresses = [f"127.0.{(i + 2) // 256}.{(i + 2) % 256}" for i in range(count)]
        self.servers: list[LoopbackSshd] = []
        self.endpoints: list[tuple[str, LoopbackSshd]] = []
        for start in range(0, count, self.PER_SERVER):
            chunk = addresses[start : start + self.PER_SERVER]
            server = LoopbackSshd(log_level).listen_also(chunk)
            self.servers.append(server)
            self.endpoints.extend((address, server) for address in chunk)

    def start(self) -> LoopbackFleet:
        try:
            for server in self.servers:
                server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@contextlib.contextmanager
def temporary_password_user(password: str) -> Iterator[str]:
    """A throw-away local user with ``password`` (root only), removed afterwards.

    sshd (``UsePAM no``) checks passwords against /etc/shadow, so a password login needs a
    real account; the tests that use this skip when not root.
    """
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("a password login on the loopback sshd needs root (to create a temporary user)")
    with _temporary_sh_user() as name:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True)
        yield name


@contextlib.contextmanager
def temporary_sh_user() -> Iterator[str]:
    """A throw-away local user whose login shell is /bin/sh (dash on Debian, as many service
    accounts have), logging in with the servers' authorized key (root only), removed
    afterwards. sshd runs every command line through the login shell: this is how a target
    with a POSIX shell that is not bash is reached."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("a login with /bin/sh on the loopback sshd needs root (to create a temporary user)")
    with _temporary_sh_user() as name:
        # No password, and not locked ('!'): sshd without PAM refuses a locked account's keys.
        subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
        yield name


@contextlib.contextmanager
def _temporary_sh_user() -> Iterator[str]:
    name = f"opsc{uuid.uuid4().hex[:10]}"
    subprocess.run(["useradd", "-M", "-d", "/tmp", "-s", "/bin/sh", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        # userdel refuses while a session of the user is still closing: retry for a while.
        deadline = time.monotonic() + 30
        while subprocess.run(["userdel", name], capture_output=True).returncode not in (0, 6):
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not remove the temporary user {name}")
            time.sleep(0.5)


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
