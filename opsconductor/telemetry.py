"""OpenTelemetry traces of an execution, across the web and worker processes (docs/telemetry.md).

On only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: then each process exports its spans by
OTLP/HTTP (a batch processor, off the request and step paths), Django's requests get server
spans and ``requests`` calls (http steps, webhooks) client spans with a ``traceparent``
header. Off, every helper here returns at its first line: no SDK import, no query.

One trace per execution: the web process's ``opsconductor.submit`` span (a child of the
caller's ``traceparent`` when it sent one) is stored with the execution as a W3C
``traceparent`` (``executions.trace_parent``); a worker reads it and hangs the attempt's
spans under it: ``opsconductor.queue_wait`` (from the last status change to the claim),
``opsconductor.execution`` (the attempt) with one ``opsconductor.step`` per step and
``opsconductor.finish``. Notification deliveries of the execution continue it too.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_setup_lock = threading.Lock()
_tracer: Any = None


def traceparent_parse(value: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) of a valid W3C ``traceparent`` (version 00), else None."""
    match = TRACEPARENT_RE.match((value or "").strip().lower())
    if not match or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return match.group(1), match.group(2)


def enabled() -> bool:
    return bool(settings.OTEL_EXPORTER_OTLP_ENDPOINT)


def telemetry_setup(*, role: str) -> Any:
    """The process's tracer, set up on first use (after a fork: every process its own
    exporter thread); None when telemetry is off."""
    global _tracer
    if not enabled():
        return None
    if _tracer is not None:
        return _tracer
    with _setup_lock:
        if _tracer is not None:
            return _tracer
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        endpoint = str(settings.OTEL_EXPORTER_OTLP_ENDPOINT).rstrip("/") + "/v1/traces"
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": settings.OTEL_SERVICE_NAME, "opsconductor.process": role}
            )
        )
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), schedule_delay_millis=1000)
        )
        trace.set_tracer_provider(provider)
        if role == "web":
            DjangoInstrumentor().instrument()
        RequestsInstrumentor().instrument()
        _tracer = trace.get_tracer("opsconductor")
        logger.info("OpenTelemetry: exporting spans of this %s process to %s", role, endpoint)
        return _tracer


def _context_of(traceparent: str | None) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent} if traceparent else {})


def current_traceparent() -> str:
    """The W3C ``traceparent`` of the current span ("" without one)."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def submit_span(*, traceparent: str | None) -> Iterator[str]:
    """Around a submission: yields the ``traceparent`` to store with the execution (the
    submit span's when telemetry is on, else the caller's own, else "")."""
    tracer = telemetry_setup(role="web")
    if tracer is None:
        yield (traceparent or "").strip().lower() if traceparent_parse(traceparent) else ""
        return
    from opentelemetry import trace

    # Under Django's server span when there is one (it continued the caller's trace
    # already); under the caller's header otherwise (manage.py, other doors).
    parent = None if trace.get_current_span().get_span_context().is_valid else _context_of(traceparent)
    with tracer.start_as_current_span("opsconductor.submit", context=parent):
        yield current_traceparent()


def _stored(execution_pk: int) -> tuple[str, datetime | None]:
    from execution.models import Execution

    row = Execution.objects.filter(pk=execution_pk).values_list("trace_parent", "status_changed_at").first()
    return (row[0] or "", row[1]) if row else ("", None)


@contextmanager
def attempt_span(*, execution_pk: int, execution_id: str, tenant: str, attempt: int) -> Iterator[None]:
    """A worker's attempt: ``opsconductor.queue_wait`` then ``opsconductor.execution``, both
    under the execution's stored submit span."""
    tracer = telemetry_setup(role="worker")
    if tracer is None:
        yield
        return
    traceparent, queued_since = _stored(execution_pk)
    parent = _context_of(traceparent)
    attributes = {"opsconductor.execution_id": execution_id, "opsconductor.tenant": tenant}
    if queued_since is not None:
        start_ns = int(queued_since.timestamp() * 1e9)
        tracer.start_span(
            "opsconductor.queue_wait", context=parent, start_time=start_ns, attributes=attributes
        ).end()
    with tracer.start_as_current_span(
        "opsconductor.execution", context=parent, attributes={**attributes, "opsconductor.attempt": attempt}
    ):
        yield


def span(name: str, **attributes: Any) -> Any:
    """A child span of the current one (a step, the finish); a no-op context when off."""
    if _tracer is None:
        return nullcontext()
    return _tracer.start_as_current_span(
        name, attributes={f"opsconductor.{k}": v for k, v in attributes.items() if v is not None}
    )


def execution_context(execution_id: Any) -> Any:
    """Around work done for an execution outside its attempt (a notification delivery): a span
    under the execution's stored submit span; a no-op context when off."""
    tracer = telemetry_setup(role="worker")
    if tracer is None:
        return nullcontext()
    from execution.models import Execution

    traceparent = (
        Execution.objects.filter(execution_id=execution_id).values_list("trace_parent", flat=True).first()
        or ""
    )
    return tracer.start_as_current_span(
        "opsconductor.notify",
        context=_context_of(traceparent),
        attributes={"opsconductor.execution_id": str(execution_id)},
    )
