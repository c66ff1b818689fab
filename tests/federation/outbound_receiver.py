"""A recording federation receiver for the outbound-queue tests.

TEST DOUBLE of a remote homeserver's PUT /_matrix/federation/v1/send/{txnId}: a real HTTPS
listener on a loopback port (self-signed certificate, tests/federation/tls.py) that records
every transaction it is sent and can be told to fail (HTTP 500) or to hold requests. A real
Synapse cannot be told to answer 500 on demand, which the retry tests need; the end-to-end test
in test_outbound_worker.py uses a real Synapse where one is available.

Like a real receiver, it deduplicates per txn id: a transaction it already answered 200 to is
answered 200 again and not recorded as delivered twice (spec: server-server API
"Transactions"), but every attempt is recorded in `attempts`.
"""

from __future__ import annotations

import json
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.federation.tls import self_signed

SEND_PREFIX = "/_matrix/federation/v1/send/"


@dataclass
class Attempt:
    txn_id: str
    body: dict[str, Any]
    authorization: str
    status: int
    at: float  # time.monotonic()


@dataclass
class Receiver:
    port: int
    server: ThreadingHTTPServer
    attempts: list[Attempt] = field(default_factory=list)
    delivered: list[Attempt] = field(default_factory=list)  # first 200 per txn id
    fail_next: int = 0  # answer this many next requests with fail_status
    fail_status: int = 500
    reject_with: str = ""  # non-empty: every PDU's result carries this error (still a 200)
    gate: threading.Event = field(default_factory=threading.Event)  # cleared: requests wait
    waiting: int = 0  # requests that arrived and wait at the gate
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def server_name(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pdus(self) -> list[dict]:
        """Every PDU delivered (200), in arrival order."""
        with self.lock:
            return [p for a in self.delivered for p in a.body.get("pdus", [])]

    def edus(self) -> list[dict]:
        with self.lock:
            return [e for a in self.delivered for e in a.body.get("edus", [])]

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"receiver: timed out waiting for {what}; "
                             f"{len(self.attempts)} attempts, {len(self.pdus())} PDUs")

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def start_receiver() -> Receiver:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            r = holder["r"]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not self.path.startswith(SEND_PREFIX):
                self._answer(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized"})
                return
            with r.lock:
                r.waiting += 1
            r.gate.wait(120)
            with r.lock:
                r.waiting -= 1
            txn_id = self.path[len(SEND_PREFIX):]
            body = json.loads(raw)
            with r.lock:
                if r.fail_next > 0:
                    r.fail_next -= 1
                    status = r.fail_status
                else:
                    status = 200
                attempt = Attempt(txn_id, body, self.headers.get("Authorization", ""), status,
                                  time.monotonic())
                r.attempts.append(attempt)
                if status == 200 and all(a.txn_id != txn_id for a in r.delivered):
                    r.delivered.append(attempt)
            if status != 200:
                self._answer(status, {"errcode": "M_UNKNOWN", "error": "Told to fail"})
                return
            # Keyed by position: this double does not compute event ids (the sender only logs).
            result = {"error": r.reject_with} if r.reject_with else {}
            results = {p.get("event_id", f"$pdu{i}"): result for i, p in enumerate(body["pdus"])}
            self._answer(200, {"pdus": results})

    tmp = Path(tempfile.mkdtemp(prefix="receiver-"))
    cert, key = self_signed(tmp)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    r = Receiver(port=server.server_address[1], server=server)
    r.gate.set()
    holder["r"] = r
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return r
