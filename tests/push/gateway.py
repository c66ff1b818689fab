"""A small but real push gateway for tests: an HTTP server on a free loopback port that records
every POST /_matrix/push/v1/notify body and answers with scripted statuses."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NOTIFY_PATH = "/_matrix/push/v1/notify"


class Gateway:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.statuses: list[int] = []  # answered in order; 200 once used up
        self.rejected: list[str] = []
        self._cond = threading.Condition()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with gateway._cond:
                    status = gateway.statuses.pop(0) if gateway.statuses else 200
                    gateway.raw.append(body)
                    gateway.requests.append({"path": self.path, "status": status,
                                             "body": json.loads(body)})
                    gateway._cond.notify_all()
                reply = json.dumps({"rejected": gateway.rejected}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{NOTIFY_PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The first n requests, waiting up to `timeout` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"gateway got {len(self.requests)} of {n} requests")
                self._cond.wait(remaining)
            return self.requests[:n]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
