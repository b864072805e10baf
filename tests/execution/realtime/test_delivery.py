"""docs/contract.md#live-progress across real processes: daphne serves the sockets, another process writes the events.

The producer (tests/execution/realtime/producer.py) is a separate process calling
transition()/event_record()/step_output_record() -- a stand-in for a worker cluster.
Both delivery paths are covered: channels_redis (REDIS_URL set) and the LISTEN/NOTIFY bridge.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from execution.models import ExecutionEvent
from tests.execution.realtime.live import (
    daphne_server,
    delivery_env,
    run_async,
    start_producer,
    wait_exit,
    ws_collect,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _db_ids(execution: Any) -> list[int]:
    return list(
        ExecutionEvent.objects.filter(execution_id=execution.execution_id)
        .order_by("id")
        .values_list("id", flat=True)
    )


def _assert_clean(messages: list[dict[str, Any]], execution: Any) -> None:
    ids = [m["id"] for m in messages]
    assert ids == sorted(set(ids)), f"duplicates or out of order: {ids}"
    assert ids == _db_ids(execution)
    for m in messages:
        assert m["execution_id"] == str(execution.execution_id)
        assert set(m["progress"]) == {"percent", "steps_done", "steps_total", "eta_seconds"}
        assert "hunter2" not in str(m), "unmasked output reached the socket"


@pytest.mark.parametrize("path", ["bridge", "redis"])
def test_client_follows_execution_and_resumes_with_after(
    path: str, watch_setup: dict[str, Any], tmp_path: Path
) -> None:
    execution = watch_setup["execution"]
    env = delivery_env(path)
    start, resume = tmp_path / "start", tmp_path / "resume"
    with daphne_server(env, tmp_path / "daphne.log") as port:
        url = f"ws://127.0.0.1:{port}/ws/executions/{execution.execution_id}/?token={watch_setup['token']}"
        producer = start_producer(
            env,
            execution.pk,
            step_seconds=0.5,
            start_file=start,
            pause_file=resume,
            pause_after_step=0,
            log=tmp_path / "producer.log",
        )
        try:

            async def first_part() -> list[dict[str, Any]]:
                task = asyncio.ensure_future(ws_collect(url, until_type="step_completed", timeout=90))
                await asyncio.sleep(1.0)  # connected and caught up (nothing yet) before events start
                start.touch()
                return await task

            first = run_async(first_part())
            # Disconnected in the middle; the producer goes on while nobody listens.
            resume.touch()
            time.sleep(0.8)
            second = run_async(
                ws_collect(url + f"&after={first[-1]['id']}", until_type="completed", timeout=90)
            )
            assert wait_exit(producer) == 0, (tmp_path / "producer.log").read_text()
        finally:
            producer.kill()
    assert [m["type"] for m in first][-1] == "step_completed"
    assert first[-1]["step_index"] == 0
    assert second and second[0]["id"] > first[-1]["id"]
    _assert_clean(first + second, execution)
    types = [m["type"] for m in first + second]
    assert types == ["approved", "queued", "started"] + [
        "step_started",
        "step_output",
        "step_completed",
    ] * 3 + ["completed"]
    assert second[-1]["progress"]["percent"] == 100
    done = [m for m in first + second if m["type"] == "step_output"]
    assert all("***" in m["data"]["text"] for m in done)


def _terminate_bridge_backend() -> int:
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'opsconductor-bridge' AND datname = current_database()"
            )
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def test_bridge_survives_pg_terminate_backend(watch_setup: dict[str, Any], tmp_path: Path) -> None:
    execution = watch_setup["execution"]
    env = delivery_env("bridge")
    start = tmp_path / "start"
    log = tmp_path / "daphne.log"
    with daphne_server(env, log) as port:
        url = f"ws://127.0.0.1:{port}/ws/executions/{execution.execution_id}/?token={watch_setup['token']}"
        producer = start_producer(
            env, execution.pk, step_seconds=1.5, start_file=start, log=tmp_path / "producer.log"
        )
        try:

            async def run() -> tuple[list[dict[str, Any]], int]:
                import json

                from websockets.asyncio.client import connect

                received: list[dict[str, Any]] = []
                killed = 0
                async with connect(url, open_timeout=30) as ws:
                    await asyncio.sleep(1.0)
                    start.touch()
                    deadline = time.monotonic() + 120
                    while time.monotonic() < deadline:
                        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
                        received.append(message)
                        if message["type"] == "step_started" and message["step_index"] == 1 and not killed:
                            killed = await asyncio.to_thread(_terminate_bridge_backend)
                        if message["type"] == "completed":
                            break
                return received, killed

            received, killed = run_async(run())
            assert wait_exit(producer) == 0, (tmp_path / "producer.log").read_text()
        finally:
            producer.kill()
    assert killed == 1
    _assert_clean(received, execution)
    assert received[-1]["type"] == "completed"
    assert log.read_text().count("notify bridge listening") >= 2, log.read_text()


@pytest.mark.parametrize("path", ["bridge", "redis"])
def test_tenant_stream_with_two_concurrent_producers(
    path: str, watch_setup: dict[str, Any], tmp_path: Path
) -> None:
    from execution.models import ExecutionStep
    from tests.factories import ExecutionFactory

    first = watch_setup["execution"]
    second = ExecutionFactory(tenant=watch_setup["tenant"], actor=watch_setup["viewer"])
    for step in ExecutionStep.objects.filter(execution_id=first.execution_id):
        ExecutionStep.objects.create(
            execution=second, step_index=step.step_index, step_name=step.step_name, step_type="noop"
        )
    env = delivery_env(path)
    start = tmp_path / "start"
    with daphne_server(env, tmp_path / "daphne.log") as port:
        url = f"ws://127.0.0.1:{port}/ws/tenants/acme/executions/?token={watch_setup['token']}&after=0"
        producers = [
            start_producer(env, ex.pk, step_seconds=0.05, start_file=start, log=tmp_path / f"producer{n}.log")
            for n, ex in enumerate([first, second])
        ]
        try:

            async def collect() -> list[dict[str, Any]]:
                task = asyncio.ensure_future(ws_collect(url, max_events=26, timeout=120))
                await asyncio.sleep(1.0)
                start.touch()
                return await task

            received = run_async(collect())
            assert all(wait_exit(p) == 0 for p in producers)
        finally:
            for p in producers:
                p.kill()
    ids = [m["id"] for m in received]
    expected = list(
        ExecutionEvent.objects.filter(tenant_id=watch_setup["tenant"].pk)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert ids == expected and len(ids) == 26
    assert {m["execution_id"] for m in received} == {str(first.execution_id), str(second.execution_id)}


@pytest.mark.parametrize("path", ["bridge", "redis"])
def test_an_idle_socket_stays_open_and_then_gets_the_events(
    path: str, watch_setup: dict[str, Any], tmp_path: Path
) -> None:
    """With redis-py 8's 5 s socket timeout, an idle consumer's blocking read on Redis failed
    and daphne closed the socket with 1011 every few seconds: a watched execution that was
    quiet for a while never showed its end."""
    execution = watch_setup["execution"]
    env = delivery_env(path)
    start = tmp_path / "start"
    with daphne_server(env, tmp_path / "daphne.log") as port:
        url = f"ws://127.0.0.1:{port}/ws/executions/{execution.execution_id}/?token={watch_setup['token']}"
        producer = start_producer(env, execution.pk, step_seconds=0.05, start_file=start)
        try:

            async def quiet_then_busy() -> list[dict[str, Any]]:
                task = asyncio.ensure_future(ws_collect(url, until_type="completed", timeout=90))
                await asyncio.sleep(12.0)  # idle: more than two blocking reads on Redis
                assert not task.done(), "the socket closed while idle"
                start.touch()
                return await task

            received = run_async(quiet_then_busy())
            assert wait_exit(producer) == 0
        finally:
            producer.kill()
        assert "Timeout reading" not in (tmp_path / "daphne.log").read_text()
    assert received[-1]["type"] == "completed"
    _assert_clean(received, execution)
