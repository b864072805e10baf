"""Hostile input (docs/contract.md#hostile-input): every case a 4xx with a reason naming the
field, nothing stored, and the tenant's list and detail still answer 200 afterwards.
Also: rows stored before the guard existed (500 levels deep, lone surrogates) cannot break
a list, a detail or a page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection

from execution.models import Execution, ExecutionEvent
from tests.execution.api.conftest import client_for, noop_body

pytestmark = pytest.mark.django_db


def nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def body_with(**changes: Any) -> str:
    body = noop_body()
    body.update(changes)
    return json.dumps(body)


def deep_text(depth: int) -> str:
    # Built as text: json.dumps itself would recurse past its limit.
    return '{"a":' * depth + "1" + "}" * depth


def raw_body(text: str) -> str:
    body = json.dumps(noop_body())
    return body[:-1] + ', "metadata": ' + text + "}"


# (name, method, url, body text or None, content type, expected status, field named in the answer)
CASES: list[tuple[str, str, str, str | None, str, int, str]] = [
    (
        "depth 33 in metadata",
        "post",
        "/api/v1/executions/",
        body_with(metadata=nested(32)),
        "json",
        400,
        "metadata.a",
    ),
    (
        "depth 500 in metadata",
        "post",
        "/api/v1/executions/",
        raw_body(deep_text(500)),
        "json",
        400,
        "metadata.a",
    ),
    ("depth 100000", "post", "/api/v1/executions/", "[" * 100_000 + "]" * 100_000, "json", 400, "[0][0][0]"),
    (
        "depth 600 in params",
        "post",
        "/api/v1/executions/",
        json.dumps(noop_body()).replace('"params": {}', '"params": ' + deep_text(600)),
        "json",
        400,
        "plan.steps[0].params.a",
    ),
    (
        "lone surrogate in a name",
        "post",
        "/api/v1/executions/",
        body_with(trace_id="\ud800"),
        "json",
        400,
        "trace_id",
    ),
    (
        "lone surrogate in a key",
        "post",
        "/api/v1/executions/",
        body_with(metadata={"\udfff": 1}),
        "json",
        400,
        "metadata",
    ),
    ("NUL in a value", "post", "/api/v1/executions/", body_with(trace_id="a\x00b"), "json", 400, "trace_id"),
    (
        "NUL in a key",
        "post",
        "/api/v1/executions/",
        body_with(metadata={"k\x00": 1}),
        "json",
        400,
        "metadata",
    ),
    (
        "integer past 64 bits",
        "post",
        "/api/v1/executions/",
        body_with(metadata={"n": 10**30}),
        "json",
        400,
        "metadata.n",
    ),
    (
        "priority past 64 bits",
        "post",
        "/api/v1/executions/",
        body_with(priority=10**20),
        "json",
        400,
        "priority",
    ),
    (
        "NaN",
        "post",
        "/api/v1/executions/",
        body_with(metadata={"n": 1}).replace('"n": 1', '"n": NaN'),
        "json",
        400,
        "body",
    ),
    (
        "infinity by overflow",
        "post",
        "/api/v1/executions/",
        raw_body('{"n": 1e999}'),
        "json",
        400,
        "metadata.n",
    ),
    ("not UTF-8", "post", "/api/v1/executions/", None, "json", 400, "body"),
    ("wrong content type", "post", "/api/v1/executions/", json.dumps(noop_body()), "text/plain", 415, ""),
    ("limit overflows", "get", "/api/v1/executions/?limit=99999999999999999999", None, "", 400, "limit"),
    ("offset overflows", "get", "/api/v1/executions/?offset=99999999999999999999", None, "", 400, "offset"),
    ("negative limit", "get", "/api/v1/executions/?limit=-1", None, "", 400, "limit"),
    ("window overflows", "get", "/api/v1/metrics/summary?window=99999999999h", None, "", 400, "window"),
    ("NUL in tenant", "get", "/api/v1/executions/?tenant=%00", None, "", 400, "tenant"),
    ("NUL in a page query", "get", "/executions/?status=%00", None, "", 400, "status"),
    ("NUL in a query key", "get", "/api/v1/executions/?a%00=1", None, "", 400, "a\\u0000"),
]


@pytest.mark.parametrize(
    ("name", "method", "url", "text", "kind", "status", "field"), CASES, ids=[c[0] for c in CASES]
)
def test_hostile_request_is_refused_and_stores_nothing(
    name: str, method: str, url: str, text: str | None, kind: str, status: int, field: str, operator: Any
) -> None:
    api = client_for(operator)
    api.force_login(operator)
    created = client_for(operator).post("/api/v1/executions/", noop_body(), format="json")
    assert created.status_code in (201, 202), created.content
    before = (Execution.objects.count(), ExecutionEvent.objects.count())
    if method == "get":
        response = api.get(url)
    else:
        payload = text.encode("utf-8", "surrogatepass") if text is not None else b'{"tenant": "\xff\xfe"}'
        content_type = "application/json" if kind == "json" else kind
        response = api.generic("POST", url, payload, content_type=content_type)
    assert response.status_code == status, (name, response.status_code, response.content[:300])
    answer = response.json()
    assert answer.get("detail"), answer
    if field:
        assert field in json.dumps(answer, ensure_ascii=False), answer
    assert (Execution.objects.count(), ExecutionEvent.objects.count()) == before
    listing = api.get("/api/v1/executions/")
    assert listing.status_code == 200
    assert api.get(f"/api/v1/executions/{created.json()['execution_id']}/").status_code == 200


def test_rows_stored_before_the_guard_cannot_break_a_list_or_a_page(operator: Any, tenant: Any) -> None:
    """A 500-deep metadata and a lone surrogate already in the table (written with SQL, as an
    older version stored them): list, detail, events and the pages still answer."""
    api = client_for(operator)
    created = api.post("/api/v1/executions/", noop_body(), format="json")
    execution_id = created.json()["execution_id"]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE executions SET metadata = %s::jsonb, tags = %s::jsonb WHERE execution_id = %s",
            [deep_text(500), json.dumps(["bad \\ud800 tag"]), execution_id],
        )
    # Events are append-only: an old poison event is a row inserted as it was.
    ExecutionEvent.objects.create(
        execution_id=execution_id, tenant_id=tenant.pk, event_type="step_output", details=nested(500)
    )
    for url in (
        "/api/v1/executions/",
        f"/api/v1/executions/{execution_id}/",
        f"/api/v1/executions/{execution_id}/events/?after=0",
    ):
        response = api.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        response.content.decode("utf-8")
    api.force_login(operator)
    for url in ("/executions/", f"/executions/{execution_id}/"):
        assert api.get(url).status_code == 200, url


def test_json_depth_scan_names_the_path_without_recursion() -> None:
    from opsconductor.request_guard import json_depth_problem

    assert json_depth_problem(json.dumps(nested(32))) is None
    assert json_depth_problem(json.dumps({"x": [1, {"y": nested(31)}]})) == "x[1].y" + ".a" * 29
    assert json_depth_problem('{"s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') is None
    assert json_depth_problem("[" * 1_000_000) == "[0]" * 32
