"""``http`` steps (docs/contract.md#steps): one request to an allow-listed host, expected status, capped body.

Params: ``method`` (GET), ``url``, ``headers``, ``body`` (text) or ``json``, ``expect_status``
(an int or a list; default any 2xx), ``timeout_seconds`` (bounded by the step timeout),
``verify_tls`` (true). The URL passes the outbound guard (execution/outbound/) and the
request goes to the address it checked. Redirects are not followed: a redirect could leave
the allow-list (a 3xx is the step's answer).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from typing import Any

import requests

from execution.enums import ActionClass, ExecutionStatus
from execution.outbound import (
    Checked,
    OutboundRefused,
    OutboundUnresolved,
    guarded_session,
    pinned,
    url_problem,
)
from execution.outbound.transport import tls_verify
from execution.runners.base import ParamProblem, Runner, StepContext, StepResult
from execution.runners.registry import register
from execution.runners.support import cap_text, output_cap, step_check_url

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
READ_METHODS = ("GET", "HEAD", "OPTIONS")


def _expected(params: dict[str, Any]) -> list[int] | None:
    expect = params.get("expect_status", params.get("expected_status"))
    if expect is None:
        return None
    return [int(x) for x in (expect if isinstance(expect, list) else [expect])]


def http_request(
    ctx: StepContext, checked: Checked, *, method: str, url: str, **kwargs: Any
) -> tuple[requests.Response | None, str]:
    """Send one request to the destination the guard ``checked`` (and nowhere else), in a
    helper thread so a cancel abandons it at once.

    Returns (response with ``_capped_body`` read, "") or (None, reason).
    """
    session = guarded_session(pinned(checked))
    box: dict[str, Any] = {}
    done = threading.Event()
    cap = output_cap()

    def send() -> None:
        try:
            response = session.request(method, url, stream=True, allow_redirects=False, **kwargs)
            body = bytearray()
            for chunk in response.iter_content(8192):
                body += chunk
                if len(body) > cap or ctx.cancel_event.is_set():
                    break
            response._content = bytes(body)  # the capped body (+1 chunk at most)
            box["response"] = response
        except requests.Timeout:
            box["error"] = "timeout"
        except requests.RequestException as exc:
            box["error"] = f"{type(exc).__name__}: {exc}"
        except OutboundRefused as exc:
            box["error"] = str(exc)
        finally:
            done.set()

    # In the step's context (contextvars): the request continues the step's trace (docs/telemetry.md).
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(send,), daemon=True, name=f"http-step-{ctx.step_index}"
    )
    thread.start()
    deadline = time.monotonic() + ctx.timeout_seconds
    while not done.wait(0.05):
        if ctx.cancel_event.is_set() or time.monotonic() >= deadline:
            # abandon the call (docs/contract.md#cancellation); the daemon thread ends with its socket
            session.close()
            return None, "cancelled" if ctx.cancel_event.is_set() else "timeout"
    session.close()
    if "error" in box:
        return None, box["error"]
    return box["response"], ""


def _guard_answer(ctx: StepContext, url: str) -> str:
    """What the guard would say (a dry run's record)."""
    try:
        step_check_url(ctx, url)
    except (OutboundRefused, OutboundUnresolved) as exc:
        return str(exc)
    return "allowed"


@register
class HttpRunner(Runner):
    step_type = "http"
    aliases = ("api", "rest", "api_call")

    def default_action_class(self, params: dict[str, Any]) -> str:
        method = str(params.get("method", "GET")).upper()
        return ActionClass.READ if method in READ_METHODS else ActionClass.MODIFY

    def validate_params(self, params: dict[str, Any]) -> list[ParamProblem]:
        problems = []
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(ParamProblem("url", "an absolute http:// or https:// URL is required"))
        elif url_problem(url):
            problems.append(ParamProblem("url", str(url_problem(url))))
        if str(params.get("method", "GET")).upper() not in METHODS:
            problems.append(ParamProblem("method", f"one of {', '.join(METHODS)}"))
        if "headers" in params and not isinstance(params["headers"], dict):
            problems.append(ParamProblem("headers", "an object of header names to values"))
        try:
            _expected(params)
        except (TypeError, ValueError):
            problems.append(ParamProblem("expect_status", "an HTTP status code or a list of them"))
        return problems

    def run(self, ctx: StepContext) -> StepResult:
        params = ctx.params
        url = str(params.get("url", ""))
        method = str(params.get("method", "GET")).upper()
        try:
            checked = step_check_url(ctx, url)
        except (OutboundRefused, OutboundUnresolved) as exc:
            return StepResult(
                status=ExecutionStatus.FAILED,
                error_message=f"{method} {url}: {exc}; no request was sent",
                output={"sent": False},
            )
        timeout = min(float(params.get("timeout_seconds") or ctx.timeout_seconds), ctx.timeout_seconds)
        kwargs: dict[str, Any] = {
            "headers": {str(k): str(v) for k, v in (params.get("headers") or {}).items()},
            "timeout": (min(timeout, 10.0), timeout),
            "verify": tls_verify(bool(params.get("verify_tls", True))),
        }
        if "json" in params:
            kwargs["json"] = params["json"]
        elif "body" in params:
            kwargs["data"] = str(params["body"]).encode()
        started = time.monotonic()
        response, error = http_request(ctx, checked, method=method, url=url, **kwargs)
        if response is None:
            status = {"cancelled": ExecutionStatus.CANCELLED, "timeout": ExecutionStatus.TIMEOUT}.get(
                error, ExecutionStatus.FAILED
            )
            return StepResult(status=status, error_message=f"{method} {url}: {error}", output={"sent": True})
        body, truncated = cap_text(response.content)
        output: dict[str, Any] = {
            "status_code": response.status_code,
            "headers": dict(response.headers),
            "body": body,
            "truncated": truncated,
            "elapsed_ms": int((time.monotonic() - started) * 1000),
        }
        if not truncated and "json" in response.headers.get("Content-Type", ""):
            with contextlib.suppress(ValueError):
                output["json"] = response.json()
        expected = _expected(params)
        ok = response.status_code in expected if expected else 200 <= response.status_code < 300
        return StepResult(
            status=ExecutionStatus.COMPLETED if ok else ExecutionStatus.FAILED,
            output=output,
            error_message=""
            if ok
            else f"{method} {url}: expected status {expected or '2xx'}, got {response.status_code}",
        )

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        params = ctx.params
        url = str(params.get("url", ""))
        return {
            "type": self.step_type,
            "would_send": f"{str(params.get('method', 'GET')).upper()} {url}",
            "headers": sorted((params.get("headers") or {}).keys()),
            "has_body": "json" in params or "body" in params,
            "allow_list": _guard_answer(ctx, url),
        }
