"""``validate`` steps (docs/contract.md#steps): assertions on earlier steps' outputs, and probes.

Params (every part optional, at least one check):
- ``assertions``: a list of ``{"step": <index, default the previous step>, <check>}`` where the
  check is one of ``exit_code: n``, ``status: "completed"``, ``http_status: n``,
  ``regex: "<pattern>"`` (on ``field``, default stdout or body), or ``json_field: "a.b.0"`` with
  ``equals: <value>`` (or just present);
- ``tcp``: ``{"host": h, "port": p}`` (or a list): the port accepts a connection;
- ``http_get``: a URL with ``expect_status`` (default 200).

Both probes pass the outbound guard like ``http`` steps (execution/outbound/: the allow-list,
the address rules) and connect to the address it checked. Regexes run in RE2 (linear time):
no pattern can hang a worker.
"""

from __future__ import annotations

from typing import Any

import re2

from execution.enums import ActionClass, ExecutionStatus
from execution.outbound import OutboundRefused, OutboundUnresolved, tcp_connect, url_problem
from execution.outbound.addresses import host_problem
from execution.runners.base import ParamProblem, Runner, StepContext, StepResult
from execution.runners.http import http_request
from execution.runners.registry import register
from execution.runners.support import step_check_host, step_check_url

CHECK_KEYS = ("exit_code", "status", "http_status", "regex", "json_field")


def _json_field(data: Any, path: str) -> tuple[bool, Any]:
    for part in [p for p in path.split(".") if p]:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.lstrip("-").isdigit() and -len(data) <= int(part) < len(data):
            data = data[int(part)]
        else:
            return False, None
    return True, data


def _assert(ctx: StepContext, spec: dict[str, Any]) -> tuple[bool, str]:
    index = int(spec.get("step", ctx.step_index - 1))
    if "status" in spec:
        got = ctx.previous_statuses.get(index)
        return got == spec["status"], f"step {index} status {got or 'not run'} (want {spec['status']})"
    output = ctx.previous_outputs.get(index)
    if output is None:
        return False, f"step {index} has no output"
    if "exit_code" in spec:
        got = output.get("exit_code")
        return got == int(spec["exit_code"]), f"step {index} exit_code {got} (want {spec['exit_code']})"
    if "http_status" in spec:
        got = output.get("status_code")
        return got == int(spec["http_status"]), f"step {index} HTTP status {got} (want {spec['http_status']})"
    if "regex" in spec:
        field = spec.get("field") or ("stdout" if "stdout" in output else "body")
        try:
            found = re2.search(str(spec["regex"]), str(output.get(field, ""))) is not None
        except re2.error as exc:
            return False, f"regex /{spec['regex']}/ is not valid RE2: {exc}"
        return found, f"step {index} {field} {'matches' if found else 'does not match'} /{spec['regex']}/"
    if "json_field" in spec:
        source = output.get("json", output)
        present, value = _json_field(source, str(spec["json_field"]))
        if "equals" in spec:
            ok = present and value == spec["equals"]
            return ok, f"step {index} {spec['json_field']} = {value!r} (want {spec['equals']!r})"
        return present, f"step {index} {spec['json_field']} {'present' if present else 'missing'}"
    return False, f"assertion needs one of {', '.join(CHECK_KEYS)}"


def _tcp(ctx: StepContext, spec: dict[str, Any]) -> tuple[bool, str]:
    host, port = str(spec.get("host") or (ctx.target.address if ctx.target else "")), int(spec["port"])
    timeout = min(float(spec.get("timeout_seconds", 3)), ctx.timeout_seconds)
    try:
        # Probes obey the allow-list, the step's own target included (docs/contract.md#steps).
        checked = step_check_host(ctx, host, port, scheme="tcp", listed=False)
    except (OutboundRefused, OutboundUnresolved) as exc:
        return False, f"tcp {host}:{port}: {exc}; no connection was attempted"
    try:
        with tcp_connect(checked, timeout=timeout):
            return True, f"tcp {host}:{port} open"
    except OSError as exc:
        return False, f"tcp {host}:{port} closed ({exc.strerror or type(exc).__name__})"


def _http(ctx: StepContext, url: str, expect: int) -> tuple[bool, str]:
    try:
        checked = step_check_url(ctx, url)
    except (OutboundRefused, OutboundUnresolved) as exc:
        return False, f"GET {url}: {exc}; no request was sent"
    response, error = http_request(ctx, checked, method="GET", url=url, timeout=(3.0, ctx.timeout_seconds))
    if response is None:
        return False, f"GET {url}: {error}"
    return response.status_code == expect, f"GET {url} -> {response.status_code} (want {expect})"


def _tcp_specs(params: dict[str, Any]) -> list[dict[str, Any]]:
    tcp = params.get("tcp") or params.get("tcp_port")
    if tcp is None:
        return []
    return list(tcp) if isinstance(tcp, list) else [tcp]


@register
class ValidateRunner(Runner):
    step_type = "validate"
    aliases = ("check", "verify")

    def default_action_class(self, params: dict[str, Any]) -> str:
        return ActionClass.READ

    def validate_params(self, params: dict[str, Any]) -> list[ParamProblem]:
        problems = []
        assertions = params.get("assertions", [])
        if not isinstance(assertions, list):
            problems.append(ParamProblem("assertions", "a list of assertions"))
            assertions = []
        for i, spec in enumerate(assertions):
            if not isinstance(spec, dict) or not any(k in spec for k in CHECK_KEYS):
                problems.append(ParamProblem(f"assertions[{i}]", f"needs one of {', '.join(CHECK_KEYS)}"))
            elif "regex" in spec:
                try:
                    re2.compile(str(spec["regex"]))
                except re2.error as exc:
                    problems.append(
                        ParamProblem(f"assertions[{i}].regex", f"not a valid RE2 expression: {exc}")
                    )
        for i, spec in enumerate(_tcp_specs(params)):
            if not isinstance(spec, dict) or not str(spec.get("port", "")).isdigit():
                problems.append(ParamProblem(f"tcp[{i}]", "needs a numeric port (and host)"))
            elif spec.get("host") is not None and host_problem(str(spec["host"])):
                problems.append(
                    ParamProblem(f"tcp[{i}].host", f"{spec['host']!r} {host_problem(str(spec['host']))}")
                )
        http_get = params.get("http_get")
        if http_get is not None and (not isinstance(http_get, str) or url_problem(http_get)):
            why = url_problem(http_get) if isinstance(http_get, str) else "an absolute http(s) URL"
            problems.append(ParamProblem("http_get", str(why)))
        if not assertions and not _tcp_specs(params) and not params.get("http_get"):
            problems.append(ParamProblem("", "a validate step needs assertions, tcp or http_get"))
        return problems

    def run(self, ctx: StepContext) -> StepResult:
        checks: list[dict[str, Any]] = []
        for spec in ctx.params.get("assertions", []):
            ok, detail = _assert(ctx, spec)
            checks.append({"check": "assertion", "ok": ok, "detail": detail})
        for spec in _tcp_specs(ctx.params):
            ok, detail = _tcp(ctx, spec)
            checks.append({"check": "tcp", "ok": ok, "detail": detail})
        if ctx.params.get("http_get"):
            expect = int(ctx.params.get("expect_status", 200))
            ok, detail = _http(ctx, str(ctx.params["http_get"]), expect)
            checks.append({"check": "http_get", "ok": ok, "detail": detail})
        failed = [c["detail"] for c in checks if not c["ok"]]
        if ctx.cancel_event.is_set():
            return StepResult(status=ExecutionStatus.CANCELLED, output={"checks": checks})
        return StepResult(
            status=ExecutionStatus.FAILED if failed or not checks else ExecutionStatus.COMPLETED,
            output={"checks": checks, "passed": len(checks) - len(failed), "failed": len(failed)},
            error_message="; ".join(failed) if failed else ("" if checks else "nothing to validate"),
        )

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "type": self.step_type,
            "assertions": len(ctx.params.get("assertions", [])),
            "tcp": [f"{s.get('host')}:{s.get('port')}" for s in _tcp_specs(ctx.params)],
            "http_get": ctx.params.get("http_get"),
        }
