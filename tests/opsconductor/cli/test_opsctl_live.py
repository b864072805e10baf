"""``opsctl`` against the running product: daphne and a real worker cluster on the test
database, the demo tenant, the installed console script run as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from execution.models import Execution
from execution.services.demo import demo_seed
from tests.execution.engine.helpers import worker_cluster
from tests.execution.realtime.live import daphne_server
from tests.factories import ExecutionFactory
from tests.support.processes import subprocess_env

OPSCTL = Path(sys.executable).with_name("opsctl")


def opsctl(*args: str, url: str, token: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSCTL_")}
    env.update(OPSCTL_URL=url, OPSCTL_TOKEN=token, OPSCTL_CONFIG="/nonexistent/opsctl.toml")
    return subprocess.run(
        [str(OPSCTL), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def _plan(commands: list[str], *, approval_level: int = 0, name: str = "opsctl live") -> dict[str, Any]:
    return {
        "tenant": "demo",
        "plan": {
            "name": name,
            "environment": "staging",
            # medium SLA: a background execution, so --follow sees it run
            "estimated_duration_seconds": 20,
            "steps": [
                {
                    "name": f"step {i}",
                    "type": "command",
                    "target": {"hostname": f"local-{i + 1}"},
                    "params": {"command": command},
                    "max_retries": 0,
                }
                for i, command in enumerate(commands)
            ],
        },
        "approval_level": approval_level,
    }


def _write(tmp_path: Path, name: str, body: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return str(path)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_opsctl_against_the_running_product(tmp_path: Path) -> None:
    assert OPSCTL.exists(), "the opsctl console script is installed with the package"
    seed = demo_seed(password="live-pw")
    tokens = {name: user["token"] for name, user in seed.users.items()}
    operator = tokens["operator"]
    ok_plan = _write(tmp_path, "ok.json", _plan(["echo hello-from-step-0", "echo bye-from-step-1"]))
    bad_plan = _write(tmp_path, "bad.json", _plan(["echo first", "echo broken >&2; exit 3"], name="fails"))
    gated = _write(tmp_path, "gated.json", _plan(["echo gated"], approval_level=1, name="gated"))

    with worker_cluster(workers=1), daphne_server(subprocess_env(), tmp_path / "daphne.log") as port:
        url = f"http://127.0.0.1:{port}"

        # A two-step plan: its live events are printed and the exit status is 0.
        done = opsctl("submit", ok_plan, "--wait", "--follow", url=url, token=operator)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        execution_id = lines[0].split()[1]
        assert lines[0] == f"execution {execution_id} queued"
        assert lines[-1] == f"execution {execution_id} completed"
        started = [line for line in lines if " step_started [step " in line]
        assert [line.split("[step ")[1][0] for line in started] == ["0", "1"], done.stdout
        assert any("stdout| hello-from-step-0" in line for line in lines)
        assert any(" completed " in line and "running -> completed" in line for line in lines)
        assert Execution.objects.get(execution_id=execution_id).status == "completed"

        # A failing step: non-zero exit, the status and the error on the last line.
        failed = opsctl("submit", bad_plan, "--wait", "--follow", url=url, token=operator)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert failed.stdout.splitlines()[-1].split()[2].rstrip(":") == "failed"
        assert any("stderr| broken" in line for line in failed.stdout.splitlines())
        failed_id = failed.stdout.splitlines()[0].split()[1]

        # The same submission again is the idempotent replay of the completed one.
        again = opsctl("submit", ok_plan, url=url, token=operator)
        assert (
            again.returncode == 0
            and again.stdout == f"execution {execution_id} completed (idempotent replay)\n"
        )

        # A bad token says so, on one line, with exit status 2.
        denied = opsctl("submit", ok_plan, "--wait", url=url, token="not-a-token")
        assert denied.returncode == 2
        assert denied.stderr == "opsctl: authentication failed (Invalid token.): check OPSCTL_TOKEN\n"

        # logs: the stored output of one step.
        logs = opsctl("logs", failed_id, "--step", "1", url=url, token=operator)
        assert logs.returncode == 0 and logs.stdout == "broken\n", logs.stdout + logs.stderr

        # get -o json is the REST body; -o table names the steps.
        got = opsctl("get", execution_id, "-o", "json", url=url, token=operator)
        assert json.loads(got.stdout)["steps"][1]["status"] == "completed"
        table = opsctl("get", execution_id, url=url, token=operator)
        assert "bye" not in table.stdout and "step 1" in table.stdout and "completed" in table.stdout

        # approve: a gated plan waits for the vote, then runs; reject needs a reason.
        waiting = opsctl("submit", gated, url=url, token=operator)
        gated_id = waiting.stdout.split()[1]
        assert waiting.returncode == 0 and waiting.stdout.split()[2] == "pending_approval"
        no_reason = opsctl("reject", gated_id, url=url, token=tokens["approver1"])
        assert no_reason.returncode == 2 and "reject needs a reason" in no_reason.stderr
        own_vote = opsctl("approve", gated_id, "-m", "mine", url=url, token=operator)
        assert own_vote.returncode == 2 and own_vote.stderr.startswith("opsctl: 403 ")
        voted = opsctl("approve", gated_id, "-m", "ok", url=url, token=tokens["approver1"])
        assert voted.returncode == 0, voted.stderr
        assert "(approval approved, 1/1)" in voted.stdout

        # cancel of a finished execution: the server's 409 reason, exit 1.
        late = opsctl("cancel", execution_id, url=url, token=operator)
        assert late.returncode == 1 and late.stderr.startswith("opsctl: 409 "), late.stderr

        # ls follows the pages (PAGE_SIZE 50): 60 more executions are all listed.
        demo = Execution.objects.get(execution_id=execution_id).tenant
        actor = Execution.objects.get(execution_id=execution_id).actor
        for _ in range(60):
            ExecutionFactory(tenant=demo, actor=actor, status="failed")
        listed = opsctl("ls", "--status", "failed", "--limit", "500", "-o", "json", url=url, token=operator)
        assert listed.returncode == 0, listed.stderr
        assert len(json.loads(listed.stdout)) == 61
        both = opsctl(
            "ls", "--status", "completed,failed", "--limit", "500", "-o", "json", url=url, token=operator
        )
        assert {e["status"] for e in json.loads(both.stdout)} == {"completed", "failed"}
        assert len(json.loads(both.stdout)) >= 63


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_opsctl_follow_of_an_immediate_plan_and_tokens(tmp_path: Path) -> None:
    """Found trying the README as a newcomer: `opsctl submit docs/examples/read-uptime.json
    --wait --follow` (a fast read plan: immediate, ended when the answer comes) printed no
    event at all, and `opsctl tokens` died with a traceback on the server's plain list."""
    seed = demo_seed(password="live-pw")
    operator = seed.users["operator"]["token"]
    readme_plan = str(Path(__file__).resolve().parents[3] / "docs" / "examples" / "read-uptime.json")

    with worker_cluster(workers=1), daphne_server(subprocess_env(), tmp_path / "daphne.log") as port:
        url = f"http://127.0.0.1:{port}"
        done = opsctl("submit", readme_plan, "--wait", "--follow", url=url, token=operator)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        execution_id = lines[0].split()[1]
        execution = Execution.objects.get(execution_id=execution_id)
        assert execution.execution_mode == "immediate" and lines[0].endswith(" completed"), done.stdout
        started = [line for line in lines if " step_started [step " in line]
        assert [line.split("[step ")[1][0] for line in started] == ["0", "1", "2"], done.stdout
        assert any(" completed " in line and "running -> completed" in line for line in lines), done.stdout
        assert lines[-1] == f"execution {execution_id} completed"

        tokens = opsctl("tokens", "-o", "json", url=url, token=operator)
        assert tokens.returncode == 0, tokens.stderr
        listed = json.loads(tokens.stdout)
        assert [(t["name"], t["prefix"]) for t in listed] == [("demo", operator[:8])]
        assert operator not in tokens.stdout
        table = opsctl("tokens", url=url, token=operator)
        assert table.returncode == 0 and "demo" in table.stdout and operator[:8] in table.stdout, table.stderr
