"""A TCP listener on loopback that counts the connections it accepts (IPv4 and IPv6, one
port): what the outbound guard's tests point tricky URLs and addresses at, to show that
nothing arrives. Each connection gets a minimal HTTP answer and is closed."""

from __future__ import annotations

import contextlib
import socket
import threading

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class CountingListener:
    def __init__(self) -> None:
        self.accepted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sockets = self._bind_both()
        self.port = self.sockets[0].getsockname()[1]
        self.threads = [threading.Thread(target=self._serve, args=(s,), daemon=True) for s in self.sockets]

    @staticmethod
    def _bind_both() -> list[socket.socket]:
        """127.0.0.1 and ::1 on the same free port (a few tries: the port may be taken on ::1)."""
        for _ in range(20):
            v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            v4.bind(("127.0.0.1", 0))
            port = v4.getsockname()[1]
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                v6.bind(("::1", port))
            except OSError:
                v4.close()
                v6.close()
                continue
            for s in (v4, v6):
                s.listen(64)
                s.settimeout(0.2)
            return [v4, v6]
        raise RuntimeError("no port free on both 127.0.0.1 and ::1")

    def _serve(self, listening: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listening.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            with contextlib.suppress(OSError), conn:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                conn.sendall(ANSWER)

    def __enter__(self) -> CountingListener:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for s in self.sockets:
            s.close()
        for thread in self.threads:
            thread.join(2)
