"""An Automation Service stand-in on loopback that runs real jobs (contract: docs/services.md).

It speaks the service's HTTP contract on a ``LoopbackHttpServer`` (tests/support/httpserver.py)
and its jobs are real: every step of a workflow, and a plain command, is a ``sh -c`` process
on this machine whose output is read while it runs; a cancel kills its process group; a job
past its ``timeout_seconds`` is killed and ends ``timeout``. Workflows are given to the
constructor as ``{name: [(step name, shell command), ...]}``; a workflow run sees its inputs
as ``INPUT_<NAME>`` environment variables (a command job sees its ``env``).

Start requests are de-duplicated on their ``Idempotency-Key`` like the real service: a repeated
key answers the job it started first.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.httpserver import LoopbackHttpServer, json_answer

TERMINAL = frozenset({"completed", "failed", "cancelled", "timeout"})
Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Job:
    id: str
    key: str
    tenant: str
    target: dict[str, Any]
    workflow: str  # "" for a command job
    steps: list[dict[str, Any]]  # {"name", "command", "status", "exit_code"}
    env: dict[str, str]
    timeout_seconds: float
    status: str = "running"
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    reason: str = ""
    created_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    process: subprocess.Popen[bytes] | None = None

    def answer(self) -> dict[str, Any]:
        steps = [{k: s[k] for k in ("name", "status", "exit_code")} for s in self.steps]
        return {
            "id": self.id,
            "status": self.status,
            "tenant": self.tenant,
            "target": self.target,
            "workflow": self.workflow or None,
            "steps": steps if self.workflow else None,  # a command job has no steps to show
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "idempotency_key": self.key,
            "created_at": self.created_at,
            "ended_at": self.ended_at,
        }


class AutomationStandIn:
    """``with AutomationStandIn({"deploy": [...]}) as service: service.url ...``"""

    def __init__(self, workflows: dict[str, list[tuple[str, str]]] | None = None) -> None:
        self.workflows = workflows or {}
        self.jobs: dict[str, Job] = {}
        self._by_key: dict[str, str] = {}
        self._lock = threading.RLock()
        self.http = LoopbackHttpServer(self._respond)
        self.url = self.http.url
        self.requests = self.http.requests

    def __enter__(self) -> AutomationStandIn:
        self.http.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for job in list(self.jobs.values()):
            self._cancel(job)
        self.http.__exit__(*exc)

    # --- what tests read ---------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        with self._lock:
            return self.jobs[job_id]

    def keys(self) -> list[str]:
        with self._lock:
            return [j.key for j in self.jobs.values()]

    def wait_for(self, job_id: str, statuses: set[str], timeout: float = 10.0) -> Job:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job.status in statuses:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} is {self.job(job_id).status}, not one of {statuses}")

    # --- HTTP ----------------------------------------------------------------------------

    def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        parts = urlsplit(path)
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if method == "GET" and segments == ["health"]:
            return json_answer(200, {"status": "ok"})
        if segments[:2] != ["api", "v1"]:
            return json_answer(404, {"detail": "not found"})
        rest = segments[2:]
        if method == "POST" and rest == ["executions"]:
            request = json.loads(body or b"{}")
            env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
            return self._start(headers, request, "", [("command", str(request["command"]))], env)
        if method == "POST" and len(rest) == 3 and rest[0] == "workflows" and rest[2] == "runs":
            steps = self.workflows.get(rest[1])
            if steps is None:
                return json_answer(404, {"detail": f"no workflow {rest[1]!r}"})
            request = json.loads(body or b"{}")
            env = {
                f"INPUT_{str(k).upper()}": v if isinstance(v, str) else json.dumps(v)
                for k, v in (request.get("inputs") or {}).items()
            }
            return self._start(headers, request, rest[1], steps, env)
        if method == "GET" and rest == ["executions"]:
            return json_answer(200, {"results": self._list(query)})
        if rest[:1] == ["executions"] and len(rest) in (2, 3):
            with self._lock:
                job = self.jobs.get(rest[1])
            if job is None:
                return json_answer(404, {"detail": "no such job"})
            if method == "POST" and rest[2:] == ["cancel"]:
                self._cancel(job)
            elif not (method == "GET" and len(rest) == 2):
                return json_answer(405, {"detail": "method not allowed"})
            with self._lock:
                return json_answer(200, job.answer())
        return json_answer(404, {"detail": "not found"})

    def _start(
        self,
        headers: dict[str, str],
        request: dict[str, Any],
        workflow: str,
        steps: list[tuple[str, str]],
        env: dict[str, str],
    ) -> Answer:
        key = headers.get("Idempotency-Key", "")
        if not key:
            return json_answer(400, {"detail": "Idempotency-Key header required"})
        with self._lock:
            if key in self._by_key:
                return json_answer(200, self.jobs[self._by_key[key]].answer())
            job = Job(
                id=f"job-{len(self.jobs) + 1}",
                key=key,
                tenant=str(request.get("tenant", "")),
                target=dict(request.get("target") or {}),
                workflow=workflow,
                steps=[{"name": n, "command": c, "status": "pending", "exit_code": None} for n, c in steps],
                env=env,
                timeout_seconds=float(request.get("timeout_seconds") or 300),
            )
            self.jobs[job.id] = job
            self._by_key[key] = job.id
            threading.Thread(target=self._run, args=(job,), daemon=True).start()
            return json_answer(201, job.answer())

    def _list(self, query: dict[str, str]) -> list[dict[str, Any]]:
        with self._lock:
            jobs = sorted(self.jobs.values(), key=lambda j: j.created_at, reverse=True)
            if query.get("tenant"):
                jobs = [j for j in jobs if j.tenant == query["tenant"]]
            if query.get("hostname"):
                jobs = [j for j in jobs if j.target.get("hostname") == query["hostname"]]
            if query.get("workflow"):
                jobs = [j for j in jobs if j.workflow == query["workflow"]]
            return [j.answer() for j in jobs[: int(query.get("limit") or 50)]]

    # --- running jobs --------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        deadline = time.monotonic() + job.timeout_seconds
        for step in job.steps:
            with self._lock:
                if job.status in TERMINAL:  # an earlier step failed, or the job was cancelled
                    step["status"] = "cancelled" if job.status == "cancelled" else "skipped"
                    continue
                step["status"] = "running"
                job.process = subprocess.Popen(
                    ["sh", "-c", step["command"]],
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **job.env},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            readers = [
                threading.Thread(target=self._read, args=(job, job.process.stdout, "stdout"), daemon=True),
                threading.Thread(target=self._read, args=(job, job.process.stderr, "stderr"), daemon=True),
            ]
            for reader in readers:
                reader.start()
            try:
                code = job.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill(job.process)
                code = job.process.wait()
                self._end(job, "timeout", code, f"job timed out after {job.timeout_seconds:g}s")
            for reader in readers:
                reader.join(5)
            with self._lock:
                step["exit_code"] = code
                if job.status in TERMINAL:  # cancelled or timed out meanwhile
                    step["status"] = job.status
                    continue
                if code != 0:
                    step["status"] = "failed"
                    last = (job.stderr.strip().splitlines() or [""])[-1]
                    self._end(
                        job, "failed", code, f"step {step['name']!r} exited {code}: {last}".rstrip(": ")
                    )
                    continue
                step["status"] = "completed"
        with self._lock:
            if job.status not in TERMINAL:
                self._end(job, "completed", 0, "")

    def _read(self, job: Job, pipe: IO[bytes] | None, stream: str) -> None:
        assert pipe is not None
        for line in iter(pipe.readline, b""):
            with self._lock:
                setattr(job, stream, getattr(job, stream) + line.decode(errors="replace"))

    def _end(self, job: Job, status: str, code: int | None, reason: str) -> None:
        with self._lock:
            if job.status in TERMINAL:
                return
            job.status, job.exit_code, job.reason, job.ended_at = status, code, reason, time.time()

    def _cancel(self, job: Job) -> None:
        with self._lock:
            if job.status in TERMINAL:
                return
            self._end(job, "cancelled", None, "cancelled on request")
            for step in job.steps:
                if step["status"] in ("pending", "running"):
                    step["status"] = "cancelled"
            process = job.process
        if process is not None and process.poll() is None:
            self._kill(process)

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
