"""OpenTelemetry: one trace from the caller's traceparent through daphne, the worker, an http
step and a webhook, checked by a real OTLP/HTTP receiver on loopback that decodes the
protobuf (opentelemetry-proto); and nothing of it when the endpoint is not set."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from execution.models import Execution, Tenant
from execution.services.demo import demo_seed
from monitoring.notifications.models import Channel
from opsconductor.telemetry import traceparent_parse
from tests.execution.engine.helpers import worker_cluster
from tests.execution.realtime.live import daphne_server
from tests.monitoring.notifications.helpers import subscribe
from tests.support.httpserver import LoopbackHttpServer
from tests.support.processes import subprocess_env

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class OtlpReceiver(LoopbackHttpServer):
    """POST /v1/traces: ExportTraceServiceRequest protobufs, kept as plain span dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        super().__init__(self._answer)

    def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if method != "POST" or path != "/v1/traces":
            return 404, {}, b""
        if headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            process = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        {
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "kind": span.kind,
                            "process": process.get("opsconductor.process"),
                            "attributes": {a.key: a.value for a in span.attributes},
                        }
                    )
        return (
            200,
            {"Content-Type": "application/x-protobuf"},
            ExportTraceServiceResponse().SerializeToString(),
        )

    def named(self, name: str) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["name"] == name]


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_trace_from_the_callers_traceparent_to_the_step_and_the_webhook(tmp_path: Path) -> None:
    seed = demo_seed(password="live-pw")
    demo = Tenant.objects.get(slug="demo")
    with OtlpReceiver() as collector, LoopbackHttpServer() as target, LoopbackHttpServer() as webhook:
        subscribe(tenant=demo, kinds=["approved"], channel=Channel.WEBHOOK, destination=webhook.url + "/hook")
        env = subprocess_env(OTEL_EXPORTER_OTLP_ENDPOINT=collector.url, HTTP_OUTBOUND_ALLOWLIST="127.0.0.1")
        body = {
            "tenant": "demo",
            "approval_level": 1,
            "plan": {
                "name": "traced",
                "environment": "staging",
                "estimated_duration_seconds": 20,
                "steps": [
                    {
                        "name": "call",
                        "type": "http",
                        "params": {"method": "GET", "url": target.url + "/ping"},
                    },
                    {"name": "rest", "type": "noop"},
                ],
            },
        }
        with worker_cluster(workers=1, **env), daphne_server(env, tmp_path / "daphne.log") as port:
            base = f"http://127.0.0.1:{port}/api/v1"
            answer = requests.post(
                f"{base}/executions/",
                json=body,
                headers={
                    "Authorization": f"Token {seed.users['operator']['token']}",
                    "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
                },
                timeout=60,
            )
            assert answer.status_code == 202, answer.text
            execution_id = answer.json()["execution_id"]
            assert answer.json()["trace_id"] == CALLER_TRACE
            vote = requests.post(
                f"{base}/executions/{execution_id}/approve/",
                json={"comment": "ok"},
                headers={"Authorization": f"Token {seed.users['approver1']['token']}"},
                timeout=60,
            )
            assert vote.status_code == 200, vote.text
            _wait(
                lambda: Execution.objects.get(execution_id=execution_id).status == "completed",
                120,
                "the execution completes",
            )
            _wait(lambda: webhook.requests, 60, "the approved webhook is delivered")
            _wait(lambda: collector.named("opsconductor.finish"), 30, "the worker's spans are exported")

    ours = [s for s in collector.spans if s["trace_id"] == CALLER_TRACE]
    by_id = {s["span_id"]: s for s in ours}
    [submit] = [s for s in ours if s["name"] == "opsconductor.submit"]
    assert submit["process"] == "web"
    # The caller's span -> Django's server span -> submit.
    server = by_id[submit["parent"]]
    assert server["parent"] == CALLER_SPAN and server["process"] == "web"
    [execution] = [s for s in ours if s["name"] == "opsconductor.execution"]
    [queue_wait] = [s for s in ours if s["name"] == "opsconductor.queue_wait"]
    assert execution["parent"] == submit["span_id"] == queue_wait["parent"]
    assert execution["process"] == "worker"
    steps = [s for s in ours if s["name"] == "opsconductor.step"]
    assert sorted(s["attributes"]["opsconductor.step_index"].int_value for s in steps) == [0, 1]
    assert all(s["parent"] == execution["span_id"] for s in steps)
    [finish] = [s for s in ours if s["name"] == "opsconductor.finish"]
    assert finish["parent"] == execution["span_id"]
    assert finish["attributes"]["opsconductor.outcome"].string_value == "completed"
    # The http step's request carried the trace on (its client span is a child of the step).
    http_step = next(s for s in steps if s["attributes"]["opsconductor.step_index"].int_value == 0)
    sent = traceparent_parse(target.requests[0]["headers"].get("traceparent"))
    assert sent is not None and sent[0] == CALLER_TRACE
    assert by_id[sent[1]]["parent"] == http_step["span_id"]
    # So did the webhook, sent later by a worker's delivery task.
    hooked = traceparent_parse(webhook.requests[0]["headers"].get("traceparent"))
    assert hooked is not None and hooked[0] == CALLER_TRACE
    assert Execution.objects.get(execution_id=execution_id).trace_id == CALLER_TRACE


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_fleet_steps_target_spans_are_children_of_its_step_span(tmp_path: Path) -> None:
    """Each target of a fleet step runs in a pool thread of the fan-out: its span (and the
    http call it makes) hangs under the step span, in the submit's trace, not in a new trace."""
    from tests.factories import AssetFactory

    seed = demo_seed(password="live-pw")
    demo = Tenant.objects.get(slug="demo")
    assets = [AssetFactory(tenant=demo, hostname=f"otel-{i}", tags=["otel"]) for i in range(3)]
    with OtlpReceiver() as collector, LoopbackHttpServer() as target:
        env = subprocess_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
            HTTP_OUTBOUND_ALLOWLIST="127.0.0.1",
            OUTBOUND_OPEN_NETWORKS="127.0.0.0/8",
        )
        body = {
            "tenant": "demo",
            "approval_level": 1,
            "plan": {
                "name": "traced fleet",
                "environment": "staging",
                "estimated_duration_seconds": 20,
                "steps": [
                    {
                        "name": "ping each",
                        "type": "http",
                        "targets": [{"asset_id": a.pk} for a in assets],
                        "strategy": {"concurrency": 3},
                        "params": {"method": "GET", "url": target.url + "/ping"},
                    }
                ],
            },
        }
        with worker_cluster(workers=1, **env), daphne_server(env, tmp_path / "daphne.log") as port:
            base = f"http://127.0.0.1:{port}/api/v1"
            answer = requests.post(
                f"{base}/executions/",
                json=body,
                headers={"Authorization": f"Token {seed.users['operator']['token']}"},
                timeout=60,
            )
            assert answer.status_code == 202, answer.text
            execution_id, trace_id = answer.json()["execution_id"], answer.json()["trace_id"]
            vote = requests.post(
                f"{base}/executions/{execution_id}/approve/",
                json={"comment": "ok"},
                headers={"Authorization": f"Token {seed.users['approver1']['token']}"},
                timeout=60,
            )
            assert vote.status_code == 200, vote.text
            ended = ("completed", "failed", "timeout", "cancelled", "rejected")
            _wait(
                lambda: Execution.objects.get(execution_id=execution_id).status in ended,
                120,
                "the execution ends",
            )
            _wait(lambda: collector.named("opsconductor.finish"), 30, "the worker's spans are exported")

    execution = Execution.objects.get(execution_id=execution_id)
    from execution.models import StepTarget

    errors = list(StepTarget.objects.filter(execution_id=execution_id).values_list("error", flat=True))
    assert execution.status == "completed", errors
    [submit] = collector.named("opsconductor.submit")
    assert submit["trace_id"] == trace_id
    [step] = collector.named("opsconductor.step")
    assert step["trace_id"] == trace_id
    spans = collector.named("opsconductor.target")
    assert len(spans) == 3
    assert {s["trace_id"] for s in spans} == {trace_id}
    assert {s["parent"] for s in spans} == {step["span_id"]}
    assert sorted(s["attributes"]["opsconductor.asset_id"].string_value for s in spans) == sorted(
        str(a.pk) for a in assets
    )
    # Each target's request carried the trace on, from its own target span.
    by_id = {s["span_id"]: s for s in collector.spans}
    sent = [traceparent_parse(r["headers"].get("traceparent")) for r in target.requests]
    assert len(sent) == 3 and all(s is not None and s[0] == trace_id for s in sent)
    assert sorted(by_id[s[1]]["parent"] for s in sent if s) == sorted(s["span_id"] for s in spans)


def test_without_an_endpoint_a_traceparent_is_kept_and_nothing_is_traced(
    tenant: Any, operator: Any, settings: Any
) -> None:
    from rest_framework.test import APIClient

    from tests.factories import token_for

    settings.OTEL_EXPORTER_OTLP_ENDPOINT = None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(operator)}")
    plan = {"name": "p", "environment": "dev", "steps": [{"name": "n", "type": "noop"}]}
    header = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    answer = client.post(
        "/api/v1/executions/",
        {"tenant": "acme", "plan": plan, "dry_run": True},
        format="json",
        HTTP_TRACEPARENT=header,
    )
    assert answer.status_code in (201, 202), answer.content
    execution = Execution.objects.get(execution_id=answer.json()["execution_id"])
    assert (execution.trace_id, execution.trace_parent) == (CALLER_TRACE, header)
    # Nothing was set up: no tracer of ours, no SDK provider (the API's default proxy).
    from opentelemetry import trace

    from opsconductor import telemetry

    assert telemetry._tracer is None
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
    # A malformed header is ignored; a trace_id in the body is kept as given.
    bad = client.post(
        "/api/v1/executions/",
        {"tenant": "acme", "plan": {**plan, "name": "q"}, "trace_id": "ticket-9"},
        format="json",
        HTTP_TRACEPARENT="00-zz-11-01",
    )
    kept = Execution.objects.get(execution_id=bad.json()["execution_id"])
    assert (kept.trace_id, kept.trace_parent) == ("ticket-9", "")


def test_traceparent_parse_refuses_malformed_and_all_zero_ids() -> None:
    assert traceparent_parse(f"00-{CALLER_TRACE}-{CALLER_SPAN}-01") == (CALLER_TRACE, CALLER_SPAN)
    assert traceparent_parse(f"00-{'0' * 32}-{CALLER_SPAN}-01") is None
    assert traceparent_parse(f"00-{CALLER_TRACE}-{'0' * 16}-01") is None
    assert traceparent_parse("garbage") is None and traceparent_parse(None) is None
