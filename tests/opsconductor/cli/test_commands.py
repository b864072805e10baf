"""opsctl's commands and its event socket against loopback servers that answer as the product
does: what each command sends and prints, and how follow() survives a dropped socket."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.sync.server import ServerConnection, serve

from opsconductor.cli.client import ApiError, AuthenticationFailed, OpsClient
from opsconductor.cli.main import main
from opsconductor.cli.render import event_line
from tests.support.httpserver import LoopbackHttpServer, json_answer

EXECUTION = {
    "execution_id": "e-1",
    "tenant": "acme",
    "actor": "olga",
    "plan_name": "restart",
    "status": "failed",
    "environment": "staging",
    "created_at": "2026-01-01T10:00:00+00:00",
    "error_message": "step 1 (restart) failed:\n exit 3",
    "steps": [
        {"index": 0, "name": "check", "type": "command", "status": "completed", "duration_ms": 12},
        {"index": 1, "name": "restart", "type": "command", "status": "failed", "duration_ms": 40},
    ],
}


def run(url: str, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--url", url, "--token", "tok", *args], out=out)
    return code, out.getvalue()


def test_get_names_the_approval_and_its_run_window() -> None:
    """A queued execution approved for tonight's window says so (the table showed 'queued' and
    nothing of why it did not start)."""
    window = {"start": "2026-12-03T18:00:00+00:00", "end": "2026-12-03T19:00:00+00:00"}
    votes = [{"voter": "ann", "decision": "approve", "comment": "tonight", "created_at": "x"}]
    waiting = {
        **EXECUTION,
        "status": "queued",
        "error_message": "",
        "approval": {"state": "approved", "approval_level": 1, "run_window": window, "votes": votes},
    }
    with LoopbackHttpServer(lambda *a: json_answer(200, waiting)) as server:
        code, table = run(server.url, "get", "e-1")
    assert code == 0
    assert (
        "approval        approved, 1/1 approvals, run window 2026-12-03T18:00:00+00:00 "
        "to 2026-12-03T19:00:00+00:00"
    ) in table


def test_get_as_table_and_json() -> None:
    with LoopbackHttpServer(lambda *a: json_answer(200, EXECUTION)) as server:
        code, table = run(server.url, "get", "e-1")
        assert code == 0
        assert "error           step 1 (restart) failed: exit 3" in table
        assert table.splitlines()[-1].split() == ["1", "restart", "command", "failed", "40"]
        code, body = run(server.url, "get", "e-1", "-o", "json")
        assert json.loads(body) == EXECUTION
    assert server.requests[0]["path"] == "/api/v1/executions/e-1/"


def test_logs_pages_through_output_events_of_one_step() -> None:
    pages = {
        None: {
            "results": [
                {"id": 5, "step_index": 0, "details": {"text": "zero\n"}},
                {"id": 6, "step_index": 1, "details": {"text": "one"}},
            ],
            "last_id": 6,
        },
        "6": {"results": [{"id": 9, "step_index": 1, "details": {"text": "two\n"}}], "last_id": 9},
        "9": {"results": [], "last_id": 9},
    }

    def responder(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if path == "/api/v1/executions/e-1/":
            return json_answer(200, EXECUTION)
        after = parse_qs(urlsplit(path).query).get("after", [None])[0]
        return json_answer(200, pages[after])

    with LoopbackHttpServer(responder) as server:
        code, out = run(server.url, "logs", "e-1", "--step", "1")
    assert (code, out) == (0, "one\ntwo\n")
    assert any("types=step_output" in r["path"] for r in server.requests)


def test_logs_name_each_steps_output_and_refuse_a_step_the_execution_has_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = [
        {"id": 5, "step_index": 0, "details": {"text": "zero\n"}},
        {"id": 6, "step_index": 1, "details": {"text": "one\n"}},
        {"id": 7, "step_index": 1, "details": {"text": "two\n", "stream": "stderr"}},
    ]

    def responder(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if path == "/api/v1/executions/e-1/":
            return json_answer(200, EXECUTION)
        after = parse_qs(urlsplit(path).query).get("after", [None])[0]
        return json_answer(200, {"results": [] if after else events, "last_id": 7})

    with LoopbackHttpServer(responder) as server:
        code, out = run(server.url, "logs", "e-1")
        assert (code, out) == (0, "== step 0 (check) ==\nzero\n== step 1 (restart) ==\none\ntwo\n")
        # A step the execution does not have is a usage error, not an empty answer.
        assert run(server.url, "logs", "e-1", "--step", "7") == (2, "")
    assert capsys.readouterr().err == "opsctl: --step 7: execution e-1 has steps 0 to 1\n"


def test_votes_and_cancel_say_what_happened_and_a_conflict_is_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    approval = {"state": "approved", "approvals": 2, "approval_level": 2}

    def responder(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if path.endswith("/approve/"):
            return json_answer(200, {"execution_id": "e-1", "status": "queued", "approval": approval})
        if path.endswith("/reject/"):
            return json_answer(409, {"detail": "already decided", "reason": "decided"})
        return json_answer(200, {"execution_id": "e-1", "status": "cancelled"})

    with LoopbackHttpServer(responder) as server:
        assert run(server.url, "approve", "e-1", "-m", "ok") == (
            0,
            "execution e-1 queued (approval approved, 2/2)\n",
        )
        assert run(server.url, "reject", "e-1", "-m", "no")[0] == 1
        assert capsys.readouterr().err == "opsctl: 409 already decided\n"
        assert run(server.url, "cancel", "e-1", "-m", "wrong window") == (0, "execution e-1 cancelled\n")
    sent = [json.loads(r["body"]) for r in server.requests]
    assert sent == [{"comment": "ok"}, {"comment": "no"}, {"reason": "wrong window"}]


def test_ls_merges_statuses_newest_first_and_refuses_an_unknown_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def responder(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        status = parse_qs(urlsplit(path).query)["status"][0]
        day = "02" if status == "timeout" else "01"
        row = {**EXECUTION, "execution_id": status, "status": status, "created_at": f"2026-01-{day}T00:00:00"}
        return json_answer(200, {"count": 1, "next": None, "results": [row]})

    with LoopbackHttpServer(responder) as server:
        code, out = run(
            server.url, "ls", "--status", "failed", "--status", "timeout", "--environment", "staging"
        )
        assert code == 0
        assert [line.split()[0] for line in out.splitlines()] == ["execution", "timeout", "failed"]
        assert "environment=staging" in server.requests[0]["path"]
        assert run(server.url, "ls", "--status", "broken")[0] == 2
    assert "--status 'broken': one of pending_approval" in capsys.readouterr().err


def test_tokens_lists_names_never_keys() -> None:
    tokens = [
        {"name": "ci", "prefix": "ab12cd34", "tenant": "acme", "created_at": "2026-01-01", "expires_at": None}
    ]
    # The server's answer is a plain list (docs/api.md "Tokens"), not a page.
    with LoopbackHttpServer(lambda *a: json_answer(200, tokens)) as server:
        code, out = run(server.url, "tokens")
        assert code == 0 and out.splitlines()[1].split()[:3] == ["ci", "ab12cd34", "acme"]
        assert json.loads(run(server.url, "tokens", "-o", "json")[1]) == tokens
    assert server.requests[0]["path"] == "/api/v1/tokens/"


def test_submit_without_wait_of_an_immediate_failure_is_exit_1(tmp_path: Any) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"tenant": "acme", "plan": {}}')
    with LoopbackHttpServer(lambda *a: json_answer(201, {**EXECUTION})) as server:
        assert run(server.url, "submit", str(plan)) == (1, "execution e-1 failed\n")
        assert (
            run(server.url, "submit", str(plan), "--traceparent", "00-" + "a" * 32 + "-" + "b" * 16 + "-01")[
                0
            ]
            == 1
        )
    assert server.requests[1]["headers"]["traceparent"].startswith("00-aaaa")


def test_event_lines() -> None:
    assert (
        event_line(
            {
                "id": 7,
                "type": "step_failed",
                "step_index": 1,
                "from_status": "running",
                "to_status": "failed",
                "created_at": "2026-01-01T10:00:01.5+00:00",
                "data": {"error_message": "exit\n3"},
                "progress": {"steps_done": 1, "steps_total": 2},
            }
        )
        == "10:00:01 #7 step_failed [step 1] running -> failed error: exit 3 (1/2)"
    )
    assert (
        event_line(
            {
                "id": 8,
                "type": "step_output",
                "step_index": 0,
                "created_at": "x",
                "details": {"text": "a\nb\n", "stream": "stderr"},
            }
        )
        == "x #8 step_output [step 0] stderr| a\nx #8 step_output [step 0] stderr| b"
    )
    assert event_line({"id": 9, "type": "cancel_requested", "data": {"reason": "ops"}}).endswith(
        "reason: ops"
    )
    fleet = {"id": 10, "type": "target_completed", "created_at": "x", "data": {}}
    fleet["progress"] = {"steps_done": 0, "steps_total": 1, "targets_done": 15, "targets_total": 40}
    assert event_line(fleet).endswith("(0/1, 15/40 targets)")


def test_event_lines_of_a_fleet_step_name_the_batch_and_each_target() -> None:
    """A followed fleet step says which host ended how (three bare 'target_completed' lines
    told nothing) and which hosts a batch starts."""
    batch = {"batch": 0, "targets": [f"web-{i}" for i in range(12)]}
    assert event_line(
        {"id": 3, "type": "fleet_batch_started", "step_index": 0, "created_at": "x", "data": batch}
    ) == (
        "x #3 fleet_batch_started [step 0] batch 0: 12 targets "
        "(web-0, web-1, web-2, web-3, web-4, web-5, web-6, web-7, web-8, web-9 and 2 more)"
    )
    failed = {
        "target_index": 1,
        "asset_id": "7",
        "hostname": "web-1",
        "status": "failed",
        "exit_code": 3,
        "batch": 0,
        "duration_ms": 40,
        "error_message": "command exited with 3",
    }
    assert event_line(
        {"id": 4, "type": "target_failed", "step_index": 0, "created_at": "x", "data": failed}
    ) == ("x #4 target_failed [step 0] web-1 failed exit 3 (40 ms) error: command exited with 3")
    done = {**failed, "hostname": "web-2", "status": "completed", "exit_code": 0, "error_message": ""}
    assert event_line(
        {"id": 5, "type": "target_completed", "step_index": 0, "created_at": "x", "data": done}
    ) == ("x #5 target_completed [step 0] web-2 completed exit 0 (40 ms)")


@pytest.fixture
def socket_server() -> Iterator[tuple[str, list[str]]]:
    """Drops the first connection after one event; the second replays after ?after= and ends."""
    seen: list[str] = []
    events = [
        {"id": 3, "type": "started", "to_status": "running", "step_index": None},
        {"id": 4, "type": "step_completed", "to_status": "completed", "step_index": 0},
        {"id": 5, "type": "completed", "to_status": "completed", "step_index": None},
    ]

    def handler(connection: ServerConnection) -> None:
        path = connection.request.path if connection.request else ""
        seen.append(path)
        query = parse_qs(urlsplit(path).query)
        if query.get("token") != ["tok"]:
            connection.close(4401)
            return
        after = int(query["after"][0])
        for event in [e for e in events if e["id"] > after][: 1 if len(seen) == 1 else 3]:
            connection.send(json.dumps(event))
        if len(seen) == 1:
            connection.close(1011)  # a web process going away mid-stream

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.socket.getsockname()[1]}", seen
        server.shutdown()


def test_follow_resumes_after_a_drop_without_repeating_and_stops_at_the_end(socket_server: Any) -> None:
    url, seen = socket_server
    client = OpsClient(url, "tok", sleep=lambda s: None)
    got = [m["id"] for m in client.follow("e-1", after=2)]
    assert got == [3, 4, 5]  # the step's "completed" is not the execution's end
    assert [parse_qs(urlsplit(p).query)["after"] for p in seen] == [["2"], ["3"]]
    with pytest.raises(AuthenticationFailed):
        list(OpsClient(url, "wrong", sleep=lambda s: None).follow("e-1"))
    assert issubclass(AuthenticationFailed, ApiError)


def test_approve_for_a_run_window_sends_both_bounds_and_prints_the_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # docs/approvals.md#run-windows: opsctl sends REST's window_start/window_end.
    window = {"start": "2026-12-04T01:00:00+00:00", "end": "2026-12-04T03:00:00+00:00"}
    approval = {"state": "approved", "approvals": 1, "approval_level": 1, "run_window": window}

    def responder(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        return json_answer(200, {"execution_id": "e-1", "status": "queued", "approval": approval})

    with LoopbackHttpServer(responder) as server:
        code, out = run(
            server.url,
            "approve",
            "e-1",
            "-m",
            "tonight",
            "--window-start",
            window["start"],
            "--window-end",
            window["end"],
        )
        assert (code, out) == (
            0,
            f"execution e-1 queued (approval approved, 1/1) run window {window['start']} to {window['end']}\n",
        )
        assert run(server.url, "approve", "e-1", "--window-start", window["start"]) == (2, "")
    assert "--window-end: a run window needs both its start and its end" in capsys.readouterr().err
    sent = [json.loads(r["body"]) for r in server.requests]
    assert sent == [{"comment": "tonight", "window_start": window["start"], "window_end": window["end"]}]
