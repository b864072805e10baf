"""A fleet step against real SSH fan-out tools, in one run (docs/fleet.md "Speed").

    .venv/bin/python bench/fleet.py [--n 100] [--concurrency 10] [--quick]

N targets at distinct loopback addresses (127.0.0.2.., one OpenSSH server per 15 addresses,
tests/support/sshd.py), each an ssh asset with its key and pinned host key. Runs `true` on
every target, same pool size everywhere, and prints wall time and targets/s of:

1. this product: one execution with one fleet step (``targets`` = the N assets, strategy
   concurrency C, one batch), submitted and run by a real ``manage.py qcluster`` (1 worker);
   the clock runs from the submission to the execution's end;
2. ``xargs -P C ssh`` (OpenSSH's client, one connection per target);
3. ``ansible -m command`` and ``ansible -m raw`` (ansible-core, ``-f C``, its default control
   master per host);
4. parallel-ssh (libssh2, ``pool_size=C``).

3 and 4 come with the ``bench`` extra (``pip install -e '.[bench]'``); without it they print
"not installed". Each figure is printed as it is measured, with the load average.

and the product's ratios (goals at N=100, C=10: >= 10x ansible -m command, >= 0.8x the rate of
parallel-ssh). Uses DATABASE_URL or the embedded PostgreSQL (migrated first); the rows it
creates are deleted at the end. Exits non-zero when a run does not reach every target.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")
# The targets listen on loopback: opened as an operator opens it, for this process and its cluster.
os.environ["OUTBOUND_OPEN_NETWORKS"] = "127.0.0.0/8"
TENANT = "bench-fleet"
SYSTEM_PYTHON = "/usr/bin/python3"


@contextlib.contextmanager
def plain_account() -> Iterator[str | None]:
    """As root, a throw-away account whose login shell is /bin/sh, removed afterwards: what
    the targets log in as. Root's own shell here is bash, which reads ~/.bashrc for every
    command sshd runs (with a pyenv init, 0.5-0.8 s a command on this machine): the same
    fixed cost in every run, which would hide what the tools differ in. None (log in as
    this user) when not root."""
    if os.geteuid() != 0:
        yield None
        return
    name = f"opscb{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "-M", "-d", "/tmp", "-s", "/bin/sh", name], check=True, capture_output=True)
    try:
        # No password, and not locked ('!'): sshd without PAM refuses a locked account's keys.
        subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
        yield name
    finally:
        deadline = time.monotonic() + 10  # userdel refuses while a session of the user closes
        while subprocess.run(["userdel", name], capture_output=True).returncode not in (0, 6):
            if time.monotonic() > deadline:  # a session left open: removed all the same
                subprocess.run(["userdel", "-f", name], capture_output=True)
                break
            time.sleep(0.5)


def key_file(server: Any) -> str:
    return str(server.dir / "client_key")


def product(fleet: Any, n: int, concurrency: int, workers: int) -> float:
    """Seconds from the submission to the end of the fleet execution."""
    from django.contrib.auth import get_user_model

    from bench.queue_throughput import delete_executions, start_cluster, stop_cluster, wait_for_cluster
    from execution.enums import ExecutionStatus, Role
    from execution.models import Asset, Membership, StepTarget, Tenant
    from execution.secrets.store import secret_set
    from execution.services.submit import execution_submit

    tenant, _ = Tenant.objects.get_or_create(slug=TENANT, defaults={"name": TENANT})
    actor, _ = get_user_model().objects.get_or_create(username=TENANT)
    Membership.objects.get_or_create(tenant=tenant, user=actor, defaults={"role": Role.OPERATOR})
    Asset.objects.filter(tenant=tenant).delete()
    for number, server in enumerate(fleet.servers):
        secret_set(tenant=tenant, path=f"{TENANT}-{number}", value=server.client_private_key)
    Asset.objects.bulk_create(
        Asset(
            tenant=tenant,
            hostname=f"bench-{i:04d}",
            connection_type="ssh",
            address=address,
            port=server.port,
            username=server.username,
            credential_ref=f"db:{TENANT}-{fleet.servers.index(server)}",
            tags=["bench-fleet"],
            metadata={"host_key": " ".join(server.host_public_key)},
        )
        for i, (address, server) in enumerate(fleet.endpoints[:n])
    )
    step = {
        "name": "true",
        "type": "command",
        "targets": {"tags": ["bench-fleet"]},
        "params": {"command": "true"},
        "strategy": {"concurrency": concurrency, "batch": "100%", "max_failures": "100%"},
        "max_retries": 0,
    }
    plan = {"name": f"bench fleet {time.time()}", "environment": "dev", "steps": [step]}
    since = time.time()
    proc = start_cluster(workers)
    try:
        wait_for_cluster(since)
        started = time.monotonic()
        execution = execution_submit(tenant=tenant, actor=actor, plan=plan).execution
        while True:
            execution.refresh_from_db(fields=["status"])
            if execution.status not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING):
                break
            if time.monotonic() - started > 600:
                raise SystemExit("the fleet execution did not end in 600 s")
            time.sleep(0.02)
        seconds = time.monotonic() - started
    finally:
        stop_cluster(proc)
    done = StepTarget.objects.filter(execution_id=execution.execution_id, status="completed").count()
    if execution.status != ExecutionStatus.COMPLETED or done != n:
        raise SystemExit(f"the fleet execution ended {execution.status} with {done}/{n} targets completed")
    delete_executions([execution.pk])
    return seconds


def openssh(fleet: Any, n: int, concurrency: int) -> float:
    lines = "".join(f"{key_file(s)} {s.port} {s.username}@{a}\n" for a, s in fleet.endpoints[:n])
    script = (
        "ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        '-i "$0" -p "$1" "$2" true'
    )
    started = time.monotonic()
    result = subprocess.run(
        ["xargs", "-P", str(concurrency), "-L", "1", "sh", "-c", script],
        input=lines,
        text=True,
        capture_output=True,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"xargs ssh failed: {result.stderr[-500:]}")
    return seconds


def ansible(fleet: Any, n: int, concurrency: int, module: str, workdir: Path) -> float | None:
    beside = Path(sys.executable).parent / "ansible"  # installed in this virtualenv
    binary = str(beside) if beside.exists() else shutil.which("ansible")
    if binary is None:
        return None
    inventory = workdir / "inventory.ini"
    inventory.write_text(
        "[fleet]\n"
        + "".join(
            f"t{i} ansible_host={a} ansible_port={s.port} ansible_user={s.username} "
            f"ansible_ssh_private_key_file={key_file(s)}\n"
            for i, (a, s) in enumerate(fleet.endpoints[:n])
        )
    )
    env = dict(
        os.environ,
        ANSIBLE_HOST_KEY_CHECKING="False",
        # ansible's own default (a control master per host) plus the loopback hosts' keys.
        ANSIBLE_SSH_ARGS=(
            "-C -o ControlMaster=auto -o ControlPersist=60s "
            "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no"
        ),
        # The targets are this machine: its modules run with the system's interpreter
        # (discovery may find a version manager's shim that a non-login ssh session cannot
        # run, and the target account may not read this virtualenv's).
        ANSIBLE_PYTHON_INTERPRETER=SYSTEM_PYTHON if os.path.exists(SYSTEM_PYTHON) else sys.executable,
        ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(workdir / "ansible-remote"),
    )
    started = time.monotonic()
    result = subprocess.run(
        [binary, "fleet", "-i", str(inventory), "-m", module, "-a", "true", "-f", str(concurrency)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"ansible -m {module} failed: {result.stdout[-800:]} {result.stderr[-800:]}")
    return seconds


def parallel_ssh(fleet: Any, n: int, concurrency: int) -> float | None:
    try:
        from pssh.clients import ParallelSSHClient  # type: ignore[import-not-found]
        from pssh.config import HostConfig  # type: ignore[import-not-found]
    except ImportError:
        return None
    endpoints = fleet.endpoints[:n]
    configs = [HostConfig(port=s.port, user=s.username, private_key=key_file(s)) for _, s in endpoints]
    started = time.monotonic()
    client = ParallelSSHClient([a for a, _ in endpoints], host_config=configs, pool_size=concurrency)
    output = client.run_command("true")
    client.join(output)
    seconds = time.monotonic() - started
    failed = [o.host for o in output if o.exit_code != 0]
    del client, output
    gc.collect()  # libssh2's sessions close when freed: the account's sessions end
    if failed:
        raise SystemExit(f"parallel-ssh failed on {failed[:5]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="20 targets, product and ssh only (for CI)")
    args = parser.parse_args()
    n = 20 if args.quick else args.n

    import django

    django.setup()
    from django.core.management import call_command

    from tests.support.sshd import LoopbackFleet

    call_command("migrate", interactive=False, verbosity=0)
    account = contextlib.ExitStack()
    user = account.enter_context(plain_account())
    fleet = LoopbackFleet(n)
    for server in fleet.servers:
        if user:  # sshd reads authorized_keys as the account
            server.username = user
            server.dir.chmod(0o711)
            server.authorized.chmod(0o644)
    fleet.start()
    workdir = Path(tempfile.mkdtemp(prefix="opsc-bench-fleet-"))
    workdir.chmod(0o755)  # the account's remote temp for ansible lives here
    (workdir / "ansible-remote").mkdir(mode=0o777)
    (workdir / "ansible-remote").chmod(0o1777)
    print(f"targets log in as {fleet.servers[0].username}", flush=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {_load()}", flush=True)
    runs: list[tuple[str, Any]] = [
        ("xargs -P ssh", lambda: openssh(fleet, n, args.concurrency)),
        ("this product", lambda: product(fleet, n, args.concurrency, args.workers)),
    ]
    if not args.quick:
        runs += [
            ("ansible -m command", lambda: ansible(fleet, n, args.concurrency, "command", workdir)),
            ("ansible -m raw", lambda: ansible(fleet, n, args.concurrency, "raw", workdir)),
            ("parallel-ssh", lambda: parallel_ssh(fleet, n, args.concurrency)),
        ]
    figures: dict[str, float] = {}
    failed: list[str] = []
    try:
        for name, run in runs:
            # Each figure is printed as it is measured: a comparator that fails loses no other.
            try:
                seconds = run()
            except SystemExit as exc:
                failed.append(name)
                print(f"{name}: FAILED: {exc}", flush=True)
                continue
            if seconds is None:
                print(f"{name}: not installed (pip install -e '.[bench]')", flush=True)
                continue
            figures[name] = seconds
            print(
                f"{name}: {n} targets, {args.concurrency} at once: {seconds:.2f} s, "
                f"{n / seconds:.1f} targets/s (load average {_load()})",
                flush=True,
            )
    finally:
        fleet.stop()
        account.close()
        shutil.rmtree(workdir, ignore_errors=True)
    ours = figures.get("this product")
    if ours is not None:
        for name, seconds in figures.items():
            if name != "this product":
                print(f"product's speed-up over {name}: {seconds / ours:.2f}x")
        command, pssh = figures.get("ansible -m command"), figures.get("parallel-ssh")
        if command is not None and pssh is not None:
            print(
                f"goals: >= 10x ansible -m command (got {command / ours:.2f}x), "
                f">= 0.8x parallel-ssh's rate (got {pssh / ours:.2f}x)"
            )
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
