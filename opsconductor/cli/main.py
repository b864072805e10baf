"""``opsctl``: the command line of OpsConductor over REST and WebSocket (docs/cli.md).

Exit status: 0 the execution completed (or the command did what it says); 1 the execution
ended otherwise, or the server refused the action for the state the execution is in (409);
2 usage, configuration, connection or authentication errors and other refusals (400, 401,
403, 404), with one line on stderr giving the server's reason; 3 ``--timeout`` ran out while
the execution was still going.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from opsconductor.cli import render
from opsconductor.cli.client import (
    TERMINAL_STATUSES,
    ApiError,
    AuthenticationFailed,
    OpsClient,
    OpsError,
    Submitted,
)
from opsconductor.cli.config import ConfigProblem, settings_resolve

EXIT_OK, EXIT_NOT_COMPLETED, EXIT_ERROR, EXIT_STILL_RUNNING = 0, 1, 2, 3
STATUSES = (
    "pending_approval",
    "approved",
    "rejected",
    "queued",
    "running",
    "completed",
    "failed",
    "cancelled",
    "timeout",
    "partial",
)


class UsageProblem(Exception):
    """A problem with what was typed (a file, a parameter); exit 2."""


def _read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        raise UsageProblem(f"{path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageProblem(f"{path}: not JSON ({exc})") from None


def _param(text: str) -> tuple[str, str]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise UsageProblem(f"-p {text!r}: expected name=value")
    return key, raw


def _typed(raw: dict[str, str], schema: Mapping[str, Any]) -> dict[str, Any]:
    """``-p`` values in the types of the runbook's parameter schema: a string parameter keeps
    ``-p tag=123`` a string; an integer or boolean that does not read as one is sent as typed,
    so the server's 400 names it. An empty value is no value (the default applies)."""
    properties = (schema or {}).get("properties") or {}
    out: dict[str, Any] = {}
    for name, text in raw.items():
        kind = (properties.get(name) or {}).get("type", "string")
        if kind == "string":
            out[name] = text
        elif text == "":
            continue
        elif kind == "integer":
            out[name] = int(text) if text.strip().lstrip("-").isdigit() else text
        else:
            out[name] = {"true": True, "false": False}.get(text.strip().lower(), text)
    return out


def _outcome(execution: dict[str, Any]) -> int:
    return EXIT_OK if execution.get("status") == "completed" else EXIT_NOT_COMPLETED


def _finish(client: OpsClient, submitted: Submitted, args: argparse.Namespace, out: TextIO) -> int:
    """After a submission or a launch: print it, then wait or follow when asked."""
    execution = submitted.execution
    replay = " (idempotent replay)" if submitted.replayed else ""
    out.write(f"execution {submitted.execution_id} {execution.get('status')}{replay}\n")
    out.flush()
    status = execution.get("status")
    if not (args.wait or args.follow) or (status in TERMINAL_STATUSES and not args.follow):
        return _outcome(execution) if status in TERMINAL_STATUSES else EXIT_OK
    # --follow prints the events even of an execution that had ended when the answer came
    # (an immediate plan): the socket replays them from the first, then closes on the end.
    if args.follow:
        for message in client.follow(submitted.execution_id):
            out.write(render.event_line(message) + "\n")
            out.flush()
    try:
        final = client.wait(submitted.execution_id, timeout=args.timeout)
    except TimeoutError as exc:
        sys.stderr.write(f"opsctl: {exc}\n")
        return EXIT_STILL_RUNNING
    error = f": {' '.join(str(final['error_message']).split())}" if final.get("error_message") else ""
    out.write(f"execution {submitted.execution_id} {final.get('status')}{error}\n")
    return _outcome(final)


def cmd_submit(client: OpsClient, args: argparse.Namespace, out: TextIO) -> int:
    body = _read_json(args.plan)
    if not isinstance(body, dict):
        raise UsageProblem(f"{args.plan}: the submission body must be a JSON object")
    submitted = client.submit(body, idempotency_key=args.idempotency_key, traceparent=args.traceparent)
    return _finish(client, submitted, args, out)


def cmd_launch(client: OpsClient, args: argparse.Namespace, out: TextIO) -> int:
    raw = dict(_param(p) for p in args.param)
    runbook = client.runbook(args.runbook, tenant=args.tenant)
    versions = runbook.get("versions") or []
    chosen = next((v for v in versions if args.version in (None, v.get("number"))), None)
    if chosen is None:
        raise UsageProblem(f"runbook {args.runbook!r} has no version {args.version}")
    submitted = client.launch(
        args.runbook,
        tenant=args.tenant,
        params=_typed(raw, chosen.get("parameters") or {}),
        version=chosen.get("number"),
        dry_run=args.dry_run,
        idempotency_key=args.idempotency_key,
    )
    return _finish(client, submitted, args, out)


def cmd_vote(client: OpsClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.command == "reject" and not (args.message or "").strip():
        raise UsageProblem("reject needs a reason: -m 'why'")
    if args.command == "reject":
        result = client.reject(args.execution_id, args.message)
    else:
        bounds = (args.window_start, args.window_end)
        if any(bounds) and not all(bounds):
            missing = "--window-end" if args.window_start else "--window-start"
            raise UsageProblem(f"{missing}: a run window needs both its start and its end")
        window = (args.window_start, args.window_end) if all(bounds) else None
        result = client.approve(args.execution_id, args.message or "", window=window)
    approval = result.get("approval") or {}
    run_window = approval.get("run_window") or {}
    out.write(
        f"execution {result.get('execution_id')} {result.get('status')} "
        f"(approval {approval.get('state')}, {approval.get('approvals')}/{approval.get('approval_level')})"
        + (f" run window {run_window.get('start')} to {run_window.get('end')}" if run_window else "")
        + "\n"
    )
    return EXIT_OK


def cmd_cancel(client: OpsClient, args: argparse.Namespace, out: TextIO) -> int:
    result = client.cancel(args.execution_id, args.message or "")
    out.write(f"execution {result.get('execution_id')} {result.get('status')}\n")
    return EXIT_OK


def cmd_logs(client: OpsClient, args: argparse.Namespace, out: TextIO) -> int:
    """The stored output events; without ``--step`` each step's output under a header line
    naming it (the output of several steps is otherwise one undivided text)."""
    steps = {s.get("index"): s for s in client.execution(args.execution_id).get("steps") or []}
    if args.step is not None and args.step not in steps:
        raise UsageProblem(
            f"--step {args.step}: execution {args.execution_id} has "
            + (f"steps 0 to {len(steps) - 1}" if steps else "no steps")
        )
    shown: Any = None
    for event in client.events(args.execution_id, types=["step_output"]):
        index = event.get("step_index")
        if args.step is not None and index != args.step:
            continue
        if args.step is None and index != shown:
            out.write(f"== step {index} ({(steps.get(index) or {}).get('name', '?')}) ==\n")
            shown = index
        text = str((event.get("details") or {}).get("text", ""))
        out.write(text if text.endswith("\n") or not text else text + "\n")
    return EXIT_OK


def cmd_ls(client: OpsClient, args: argparse.Namespace, out: TextIO) -> int:
    statuses = [s for value in args.status or [] for s in value.split(",") if s] or [None]
    for status in statuses:
        if status is not None and status not in STATUSES:
            raise UsageProblem(f"--status {status!r}: one of {', '.join(STATUSES)}")
    rows: list[dict[str, Any]] = []
    for status in statuses:
        for execution in client.executions(
            status=status, environment=args.environment, tag=args.tag, tenant=args.tenant
        ):
            rows.append(execution)
            if len(rows) >= args.limit * len(statuses):
                break
    rows.sort(key=lambda e: str(e.get("created_at") or ""), reverse=True)
    rows = rows[: args.limit]
    if args.output == "json":
        render.as_json(rows, out)
    else:
        render.executions_table(rows, out)
    return EXIT_OK


def cmd_get(client: OpsClient, args: argparse.Namespace, out: TextIO) -> int:
    execution = client.execution(args.execution_id)
    if args.output == "json":
        render.as_json(execution, out)
    else:
        render.execution_table(execution, out)
    return EXIT_OK


def cmd_tokens(client: OpsClient, args: argparse.Namespace, out: TextIO) -> int:
    tokens = client.tokens()
    if args.output == "json":
        render.as_json(tokens, out)
        return EXIT_OK
    columns = ("name", "prefix", "tenant", "created_at", "expires_at", "last_used_at", "last_used_from")
    render.table([[t.get(c) for c in columns] for t in tokens], columns, out)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opsctl", description="OpsConductor over REST and WebSocket.")
    parser.add_argument("--url", help="server URL (default: OPSCTL_URL, then the config file)")
    parser.add_argument("--token", help="API token (default: OPSCTL_TOKEN, then the config file)")
    parser.add_argument(
        "--config", help="config file (default: OPSCTL_CONFIG or ~/.config/opsctl/config.toml)"
    )
    parser.add_argument("--http-timeout", type=float, default=30.0, help="seconds per HTTP request")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def waiting(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--wait", action="store_true", help="wait until the execution ends")
        sub.add_argument("--follow", action="store_true", help="print its events live (implies --wait)")
        sub.add_argument("--timeout", type=float, help="give up waiting after this many seconds (exit 3)")
        sub.add_argument("--idempotency-key", help="Idempotency-Key header")

    sub = commands.add_parser("submit", help="submit a plan (the REST submission body; - for stdin)")
    sub.add_argument("plan")
    sub.add_argument("--traceparent", help="W3C traceparent that the execution's trace continues")
    waiting(sub)
    sub.set_defaults(run=cmd_submit)

    sub = commands.add_parser("launch", help="launch a runbook")
    sub.add_argument("runbook")
    sub.add_argument("--tenant", required=True)
    sub.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    sub.add_argument("--version", type=int, help="the runbook version (default: the latest)")
    sub.add_argument("--dry-run", action="store_true")
    waiting(sub)
    sub.set_defaults(run=cmd_launch)

    for name, what in (("approve", "approve an execution"), ("reject", "reject an execution")):
        sub = commands.add_parser(name, help=what)
        sub.add_argument("execution_id")
        sub.add_argument("-m", "--message", help="comment (required to reject)")
        if name == "approve":
            sub.add_argument("--window-start", help="approve for a run window: its start (ISO 8601)")
            sub.add_argument("--window-end", help="approve for a run window: its end (ISO 8601)")
        sub.set_defaults(run=cmd_vote)

    sub = commands.add_parser("cancel", help="cancel an execution")
    sub.add_argument("execution_id")
    sub.add_argument("-m", "--message", help="reason")
    sub.set_defaults(run=cmd_cancel)

    sub = commands.add_parser("logs", help="print the stored output of an execution's steps")
    sub.add_argument("execution_id")
    sub.add_argument("--step", type=int, help="only this step index")
    sub.set_defaults(run=cmd_logs)

    sub = commands.add_parser("ls", help="list executions, newest first")
    sub.add_argument("--status", action="append", help="status (repeat or comma-separate)")
    sub.add_argument("--environment", choices=("dev", "staging", "prod"))
    sub.add_argument("--tag")
    sub.add_argument("--tenant")
    sub.add_argument("--limit", type=int, default=50)
    sub.add_argument("-o", "--output", choices=("table", "json"), default="table")
    sub.set_defaults(run=cmd_ls)

    sub = commands.add_parser("get", help="show one execution")
    sub.add_argument("execution_id")
    sub.add_argument("-o", "--output", choices=("table", "json"), default="table")
    sub.set_defaults(run=cmd_get)

    sub = commands.add_parser("tokens", help="list your API tokens")
    sub.add_argument("-o", "--output", choices=("table", "json"), default="table")
    sub.set_defaults(run=cmd_tokens)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    run: Callable[[OpsClient, argparse.Namespace, TextIO], int] = args.run
    try:
        settings = settings_resolve(url=args.url, token=args.token, config=args.config)
        client = OpsClient(settings.url, settings.token, timeout=args.http_timeout)
        return run(client, args, out)
    except AuthenticationFailed as exc:
        sys.stderr.write(f"opsctl: authentication failed ({exc.reason}): check OPSCTL_TOKEN\n")
        return EXIT_ERROR
    except ApiError as exc:
        sys.stderr.write(f"opsctl: {exc.status} {exc.reason}\n")
        return EXIT_NOT_COMPLETED if exc.status == 409 else EXIT_ERROR
    except (OpsError, ConfigProblem, UsageProblem) as exc:
        sys.stderr.write(f"opsctl: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("opsctl: interrupted\n")
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
