"""The common HTTP client of the external services: timeouts, retries with back-off, health.

Retries are urllib3's ``Retry`` on the session's adapter: connection errors, read errors and
500/502/503/504 answers are retried ``SERVICE_RETRIES`` times with exponential back-off
(``backoff_factor`` * 2^n, honouring ``Retry-After``). POSTs are retried too: every POST of
ours carries an idempotency key the services de-duplicate on (docs/services.md).

The URL is the operator's (settings), so the outbound guard counts it as allow-listed, but
every request still passes it: it goes to the address the guard checked (never through a
proxy of the environment), never to the product's own ports, and no redirect is followed
(a 3xx is an error).
"""

from __future__ import annotations

import time
from typing import Any

import requests
from django.conf import settings
from urllib3.util.retry import Retry

from execution.errors import DomainError, NotFound
from execution.masking import mask_text
from execution.outbound import OutboundRefused, OutboundUnresolved, guarded_session, operator_check

RETRY_STATUSES = (500, 502, 503, 504)


class ServiceError(DomainError):
    """The service answered with an error (4xx other than 404, or 5xx after every retry)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServiceUnavailable(ServiceError):
    """No answer at all: connection refused or timed out after every retry."""


class ServiceClient:
    service_name = "service"

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff_factor: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout if timeout is not None else settings.SERVICE_TIMEOUT_SECONDS)
        retries = int(retries if retries is not None else settings.SERVICE_RETRIES)
        self.retries = retries
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"}),
            backoff_factor=backoff_factor,
            backoff_max=10,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        self.session = guarded_session(operator_check, max_retries=retry)
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "opsconductor-stage-e"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call (with the adapter's retries); JSON answer, or a domain error."""
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(
                method, url, timeout=(min(self.timeout, 5.0), self.timeout), allow_redirects=False, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout, OutboundUnresolved) as exc:
            raise ServiceUnavailable(
                f"{self.service_name} unreachable at {self.base_url} "
                f"({type(exc).__name__} after {self.retries} retries)"
            ) from None
        except OutboundRefused as exc:
            raise ServiceError(f"{self.service_name} at {self.base_url}: {exc}") from None
        except requests.RequestException as exc:  # a URL requests cannot send (InvalidURL ...)
            raise ServiceError(
                f"{self.service_name} at {self.base_url}: not sent ({type(exc).__name__}: {exc})"
            ) from None
        if 300 <= response.status_code < 400:
            raise ServiceError(
                f"{self.service_name}: {method} {path} -> {response.status_code} (a redirect, not followed)",
                status_code=response.status_code,
            )
        if response.status_code == 404:
            raise NotFound(f"{self.service_name}: {method} {path} -> 404")
        if response.status_code >= 400:
            raise ServiceError(
                f"{self.service_name}: {method} {path} -> {response.status_code} "
                f"{mask_text(response.text[:300])}",
                status_code=response.status_code,
            )
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ServiceError(f"{self.service_name}: {method} {path} answered non-JSON") from None

    def health(self) -> dict[str, Any]:
        """``GET /health`` without retries: {"ok", "status_code", "latency_ms", "detail"}."""
        started = time.monotonic()
        try:
            with guarded_session(operator_check) as once:  # no retries: a health check answers now
                response = once.get(
                    f"{self.base_url}/health", timeout=min(self.timeout, 5.0), allow_redirects=False
                )
        except requests.RequestException as exc:
            return {"ok": False, "status_code": None, "latency_ms": None, "detail": type(exc).__name__}
        except (OutboundRefused, OutboundUnresolved) as exc:
            return {"ok": False, "status_code": None, "latency_ms": None, "detail": str(exc)}
        latency = int((time.monotonic() - started) * 1000)
        return {
            "ok": response.status_code == 200,
            "status_code": response.status_code,
            "latency_ms": latency,
            "detail": mask_text(response.text[:200]),
        }

    def close(self) -> None:
        self.session.close()
