"""A recording HTTP server on loopback (http.server in a thread) with scripted answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A handler gets (method, path, headers, body) and returns (status, headers, body) or sleeps.
Responder = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


def json_answer(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


class LoopbackHttpServer:
    def __init__(self, responder: Responder | None = None, *, host: str = "127.0.0.1") -> None:
        self.requests: list[dict[str, Any]] = []
        self.responder: Responder = responder or (lambda m, p, h, b: json_answer(200, {"ok": True}))
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                outer.requests.append(
                    {"method": self.command, "path": self.path, "headers": headers, "body": body}
                )
                status, extra, payload = outer.responder(self.command, self.path, headers, body)
                try:
                    self.send_response(status)
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackHttpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def slow(seconds: float, answer: tuple[int, dict[str, str], bytes]) -> Responder:
    def responder(m: str, p: str, h: dict[str, str], b: bytes) -> tuple[int, dict[str, str], bytes]:
        time.sleep(seconds)
        return answer

    return responder
