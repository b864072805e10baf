"""A typed client of the OpsConductor REST API and its event socket (docs/cli.md).

``OpsClient(url, token)`` wraps ``requests``: every call raises ``ApiError`` (the server's
status and reason), ``AuthenticationFailed`` (401) or ``ConnectionFailed``; a ``503`` (the
database away, or a dependency the server waits for) is retried after the server's
``Retry-After``. Lists are followed page by page. ``follow()`` reads one execution's events
from the WebSocket and reconnects after a drop from the last event it yielded, so no event is
missed or repeated.

It imports nothing from Django: other programs import it as they would any REST client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import requests

# The statuses an execution never leaves (docs/contract.md#state-machine); ``failed`` and
# ``timeout`` leave only by an operator's dead-letter requeue, which starts a new wait.
TERMINAL_STATUSES = frozenset({"completed", "failed", "partial", "cancelled", "timeout", "rejected"})
USER_AGENT = "opsctl/1"
# WebSocket close codes of the event socket (docs/contract.md#live-progress).
_CLOSE_REASONS = {4400: "bad request", 4401: "not authenticated", 4403: "forbidden", 4404: "not found"}


class OpsError(Exception):
    """Anything that stops a call; ``str()`` is one line for a terminal."""


class ConnectionFailed(OpsError):
    """The server could not be reached (or kept answering 503 past the retries)."""


class ApiError(OpsError):
    """The server answered with an error status; ``reason`` is its own words."""

    def __init__(self, status: int, reason: str, body: Any = None) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.body = body


class AuthenticationFailed(ApiError):
    """401 (or WebSocket close 4401): the token is missing, wrong, expired or revoked."""


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: the execution body and how the server answered."""

    execution: dict[str, Any]
    status_code: int  # 202 queued, 201 immediate and finished, 200 idempotent replay

    @property
    def replayed(self) -> bool:
        return self.status_code == 200

    @property
    def execution_id(self) -> str:
        return str(self.execution["execution_id"])


def _reason(body: Any, fallback: str) -> str:
    """The server's reason in one line: ``detail`` plus each field problem's path."""
    if not isinstance(body, dict):
        return fallback
    detail = str(body.get("detail") or body.get("reason") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        problems = "; ".join(
            f"{e.get('path')}: {e.get('message')}" if isinstance(e, dict) else str(e) for e in errors[:5]
        )
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        detail = f"{detail}: {problems}{more}" if detail else problems + more
    if not detail:  # a DRF field map such as {"comment": ["..."]}
        detail = "; ".join(f"{k}: {v[0] if isinstance(v, list) and v else v}" for k, v in body.items())
    return " ".join((detail or fallback).split())


def _error(response: requests.Response) -> ApiError:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    reason = _reason(body, response.reason or f"HTTP {response.status_code}")
    kind = AuthenticationFailed if response.status_code == 401 else ApiError
    return kind(response.status_code, reason, body)


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


class OpsClient:
    """The REST API of one OpsConductor at ``url`` (``https://ops.example.com``), acting with
    ``token``. ``retries``: how many times a 503 (after its Retry-After, at most
    ``max_retry_wait`` seconds) or a connection error of a repeatable call is tried again."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        max_retry_wait: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise OpsError(f"the URL must be http(s)://host[:port], got {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self.session = session or requests.Session()
        self.sleep = sleep
        self.session.headers.update({"Authorization": f"Token {token}", "User-Agent": USER_AGENT})

    # --- transport ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        repeatable: bool = False,
    ) -> requests.Response:
        """One call; ``repeatable`` calls (reads, submissions: their idempotency key makes a
        repeat return the first one) are tried again after a connection error too."""
        url = path if path.startswith("http") else self.url + path
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.session.request(
                    method, url, params=params, json=body, headers=dict(headers or {}), timeout=self.timeout
                )
            except requests.RequestException as exc:
                if not repeatable or attempt > self.retries:
                    raise ConnectionFailed(f"cannot reach {self.url}: {type(exc).__name__}") from exc
                self.sleep(min(self.max_retry_wait, 0.5 * 2 ** (attempt - 1)))
                continue
            if response.status_code == 503 and attempt <= self.retries:
                # The server says it did nothing (docs/api.md: 503 + Retry-After): safe to repeat.
                self.sleep(min(self.max_retry_wait, retry_after_seconds(response.headers.get("Retry-After"))))
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, following ``next`` until the last page."""
        url: str | None = path
        query: Mapping[str, Any] | None = params
        while url:
            page = self._json("GET", url, params=query, repeatable=True)
            yield from page.get("results", [])
            url, query = page.get("next"), None  # ``next`` carries the query already

    # --- executions -----------------------------------------------------------------------
    def submit(
        self, body: Mapping[str, Any], *, idempotency_key: str | None = None, traceparent: str | None = None
    ) -> Submitted:
        """``POST /api/v1/executions/`` with the REST submission body (docs/contract.md#submission)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if traceparent:
            headers["traceparent"] = traceparent
        response = self.request("POST", "/api/v1/executions/", body=body, headers=headers, repeatable=True)
        return Submitted(execution=response.json(), status_code=response.status_code)

    def launch(
        self,
        runbook: str,
        *,
        tenant: str,
        params: Mapping[str, Any],
        version: int | None = None,
        dry_run: bool = False,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """``POST /api/v1/runbooks/{slug}/launch/``: answered like a submission."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body: dict[str, Any] = {"tenant": tenant, "params": dict(params), "dry_run": dry_run}
        if version is not None:
            body["version"] = version
        response = self.request(
            "POST",
            f"/api/v1/runbooks/{quote(runbook, safe='')}/launch/",
            body=body,
            headers=headers,
            repeatable=True,
        )
        return Submitted(execution=response.json(), status_code=response.status_code)

    def runbook(self, slug: str, *, tenant: str) -> dict[str, Any]:
        """``GET /api/v1/runbooks/{slug}/?tenant=``: the runbook with every version."""
        path = f"/api/v1/runbooks/{quote(slug, safe='')}/"
        return dict(self._json("GET", path, params={"tenant": tenant}, repeatable=True))

    def execution(self, execution_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/api/v1/executions/{quote(execution_id, safe='')}/", repeatable=True))

    def executions(self, **filters: str | None) -> Iterator[dict[str, Any]]:
        """Executions visible to the token, newest first; filters as the REST list takes them
        (status, environment, tag, tenant, created_after, created_before)."""
        return self.pages("/api/v1/executions/", {k: v for k, v in filters.items() if v is not None})

    def events(
        self, execution_id: str, *, after: int | None = None, types: list[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The stored events of an execution after ``after``, oldest first, page by page."""
        path = f"/api/v1/executions/{quote(execution_id, safe='')}/events/"
        cursor = after
        while True:
            params: dict[str, Any] = {"after": cursor} if cursor is not None else {}
            if types:
                params["types"] = ",".join(types)
            page = self._json("GET", path, params=params, repeatable=True)
            results = page.get("results", [])
            yield from results
            if not results:
                return
            cursor = page.get("last_id")

    def approve(
        self, execution_id: str, comment: str = "", *, window: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """Approve; ``window`` (start, end: ISO 8601) approves for a run window
        (docs/approvals.md#run-windows): the server checks both bounds."""
        body: dict[str, Any] = {"comment": comment}
        if window is not None:
            body.update(window_start=window[0], window_end=window[1])
        return self._vote(execution_id, "approve", body)

    def reject(self, execution_id: str, comment: str) -> dict[str, Any]:
        return self._vote(execution_id, "reject", {"comment": comment})

    def _vote(self, execution_id: str, decision: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v1/executions/{quote(execution_id, safe='')}/{decision}/"
        return dict(self._json("POST", path, body=body))

    def cancel(self, execution_id: str, reason: str = "") -> dict[str, Any]:
        path = f"/api/v1/executions/{quote(execution_id, safe='')}/cancel/"
        # Cancelling twice is cancelling once (docs/contract.md#cancellation-and-timeouts).
        return dict(self._json("POST", path, body={"reason": reason} if reason else {}, repeatable=True))

    def tokens(self) -> list[dict[str, Any]]:
        """The token owner's own API tokens (never their keys): the answer is a plain list."""
        return list(self._json("GET", "/api/v1/tokens/", repeatable=True))

    def wait(
        self, execution_id: str, *, poll_seconds: float = 1.0, timeout: float | None = None
    ) -> dict[str, Any]:
        """Poll until the execution is terminal; ``TimeoutError`` when ``timeout`` runs out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            body = self.execution(execution_id)
            if body.get("status") in TERMINAL_STATUSES:
                return body
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"execution {execution_id} still {body.get('status')} after {timeout:g}s")
            self.sleep(poll_seconds)

    # --- live events ----------------------------------------------------------------------
    def websocket_url(self, execution_id: str, *, after: int) -> str:
        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = f"{parts.path}/ws/executions/{quote(execution_id, safe='')}/"
        return urlunsplit((scheme, parts.netloc, path, urlencode({"token": self.token, "after": after}), ""))

    def follow(
        self, execution_id: str, *, after: int = 0, idle_check_seconds: float = 15.0
    ) -> Iterator[dict[str, Any]]:
        """Live events of one execution (docs/contract.md#live-progress messages) until it is
        terminal. A dropped socket is reopened from the last event id; while the socket is
        quiet the execution's status is checked over REST every ``idle_check_seconds``."""
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        last = after
        failures = 0
        while True:
            try:
                with connect(
                    self.websocket_url(execution_id, after=last),
                    open_timeout=self.timeout,
                    user_agent_header=USER_AGENT,
                ) as socket:
                    failures = 0
                    while True:
                        try:
                            raw = socket.recv(timeout=idle_check_seconds)
                        except TimeoutError:
                            if self.execution(execution_id).get("status") in TERMINAL_STATUSES:
                                return
                            continue
                        message = json.loads(raw)
                        last = max(last, int(message.get("id") or 0))
                        yield message
                        # A step's own status (step_completed ...) is not the execution's.
                        if (
                            message.get("step_index") is None
                            and message.get("to_status") in TERMINAL_STATUSES
                        ):
                            return
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                if code in _CLOSE_REASONS:
                    kind = AuthenticationFailed if code == 4401 else ApiError
                    raise kind(code, f"event socket closed: {_CLOSE_REASONS[code]}") from None
                failures += 1
                if failures > self.retries:
                    raise ConnectionFailed(f"the event socket of {self.url} keeps closing ({code})") from None
            except (OSError, InvalidHandshake, InvalidURI) as exc:
                failures += 1
                if failures > self.retries:
                    raise ConnectionFailed(f"cannot reach {self.url}: {type(exc).__name__}") from exc
            self.sleep(min(self.max_retry_wait, 0.5 * 2 ** min(failures, 6)))
