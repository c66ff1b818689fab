"""A live Palisade that federates over loopback TLS with other test servers (e.g. a real Synapse).

    peer = start_palisade_peer(tmp_path)
    bob = peer.register("bob", "a long password")          # ClientAPI on the client listener
    bob.put(profile_path(bob.user_id) + "/displayname", {"displayname": "Bob"})
    ...
    peer.stop()

or the module-scoped `palisade_peer` fixture (`from tests.federation.peers import
palisade_peer_fixture  # noqa: F401`). The peer is `palisade serve` (tests/live_server.py) with:
- server_name `127.0.0.1:<fed_port>`, federation + key APIs over TLS on that port (self-signed),
  client API over plain HTTP on another port;
- `[federation] verify_tls = false, allow_private_addresses = true`: a loopback test federation
  of self-signed servers (never in production);
- rate limits high enough for bursts of hundreds of messages;
- with PALISADE_REDIS_URL set (PostgreSQL + Redis runs), a real Celery worker beside it, so
  background work (the federation outbound queue) runs as in production.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.federation.synapse import ClientAPI, shared_secret_register
from tests.federation.tls import self_signed
from tests.live_server import LiveServer, _merge, free_port, start_server

HIGH = {"per_second": 10000, "burst": 100000}
HIGH_RATE_LIMITS = {"message": HIGH, "login": HIGH, "registration": HIGH, "federation": HIGH,
                    "media_upload": HIGH}


@dataclass
class PalisadePeer:
    server: LiveServer
    fed_url: str                      # https://127.0.0.1:<fed_port>
    worker: Any = field(default=None, repr=False)   # the Celery worker process, if any
    worker_log: Path | None = None

    @property
    def server_name(self) -> str:
        return self.server.server_name

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def log(self) -> str:
        text = self.server.log()
        if self.worker_log is not None and self.worker_log.exists():
            text += "\n--- celery worker ---\n" + self.worker_log.read_text(errors="replace")
        return text

    def register(self, localpart: str, password: str, *, admin: bool = False) -> ClientAPI:
        user = shared_secret_register(self.base_url, self.server.shared_secret, localpart,
                                      password, admin=admin)
        return ClientAPI(self.base_url, user)

    def audit_records(self, action: int) -> list[tuple[str, str, dict]]:
        """(actor, target, details) of the peer's audit records with this action code (e.g.
        audit.actions.AuditAction.POLICY_DENIED), oldest first, read from its own database."""
        url = self.server.database_url
        sql = "SELECT actor, target, details FROM audit_record WHERE action = %s ORDER BY seq"
        if url.startswith("sqlite:///"):
            import sqlite3

            with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
                rows = list(db.execute(sql.replace("%s", "?"), (int(action),)))
        else:
            import psycopg

            with psycopg.connect(url) as db:
                rows = list(db.execute(sql, (int(action),)))
        return [(actor, target, d if isinstance(d, dict) else json.loads(d))
                for actor, target, d in rows]

    def stop(self) -> None:
        if self.worker is not None:
            from tests.push.conftest import stop_worker

            stop_worker(self.worker)
            self.worker = None
        self.server.stop()


def palisade_peer_config(tmp: Path, fed_port: int, client_port: int) -> dict[str, Any]:
    cert, key = self_signed(tmp)
    return {
        "server_name": f"127.0.0.1:{fed_port}",
        "public_baseurl": f"http://127.0.0.1:{client_port}/",
        "listeners": [
            {"bind": "127.0.0.1", "port": client_port, "resources": ["client"]},
            {"bind": "127.0.0.1", "port": fed_port, "resources": ["federation"],
             "tls_certificate": str(cert), "tls_private_key": str(key)},
        ],
        "federation": {"verify_tls": False, "allow_private_addresses": True},
        "rate_limits": HIGH_RATE_LIMITS,
    }


def start_palisade_peer(tmp: Path, **config_overrides: Any) -> PalisadePeer:
    """`config_overrides` merge over the peer configuration (tables key by key), e.g.
    federation={"allow_list": ["127.0.0.1:8481"]}. Returns once both listeners answer."""
    tmp.mkdir(parents=True, exist_ok=True)
    # Another process may take a port between free_port() and the listener binding it (many
    # test processes share this machine): then start again on other ports, in a fresh folder.
    for attempt in range(3):
        directory = tmp if attempt == 0 else tmp / f"retry-{attempt}"
        directory.mkdir(exist_ok=True)
        try:
            return _start_peer(directory, config_overrides)
        except RuntimeError as e:
            if attempt == 2 or "address already in use" not in str(e).lower():
                raise
    raise AssertionError("unreachable")


def _wait_for_federation_listener(peer: PalisadePeer, timeout: float = 60.0) -> None:
    """The TLS federation listener answers with OUR key document (it is a process of its own,
    and may come up after the client listener start_server waited for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peer.server.process.poll() is not None:
            raise RuntimeError(f"palisade serve exited with {peer.server.process.returncode}:\n"
                               f"{peer.server.log()[-4000:]}")
        try:
            r = httpx.get(peer.fed_url + "/_matrix/key/v2/server", verify=False, timeout=2)
            if r.status_code == 200 and r.json().get("server_name") == peer.server_name:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the federation listener {peer.fed_url} did not answer in {timeout}s:\n"
                       f"{peer.server.log()[-4000:]}")


def _start_peer(tmp: Path, config_overrides: dict[str, Any]) -> PalisadePeer:
    fed_port, client_port = free_port(), free_port()
    while client_port == fed_port:
        client_port = free_port()
    config = palisade_peer_config(tmp, fed_port, client_port)
    redis_url = os.environ.get("PALISADE_REDIS_URL", "")
    queue = f"palisade-peer-{uuid.uuid4().hex[:10]}"
    if redis_url:
        # Push deliveries on a queue of this peer's own, so no other test's worker takes them.
        config["push"] = {"celery_queue": queue}
        # The federation sender's tasks too: a worker of ANOTHER test's peer on the same Redis
        # must never take them (it would look for this peer's queue rows in its own database).
        config["federation"] = {**config["federation"], "celery_queue": queue}
    server = start_server(tmp, **_merge(config, config_overrides))
    peer = PalisadePeer(server, fed_url=f"https://127.0.0.1:{fed_port}")
    try:
        _wait_for_federation_listener(peer)
    except BaseException:
        server.stop()
        raise
    if redis_url:
        # With Redis configured tasks do not run in-process: run a real worker, as production
        # does, on this peer's own queue (push deliveries and the federation sender).
        peer.worker_log = tmp / "worker.log"
        try:
            from tests.push.conftest import start_worker, worker_env

            env = worker_env(server.database_url, redis_url, queue,
                             PALISADE_CONFIG=str(server.config_path))
            peer.worker = start_worker(env, queue, peer.worker_log)
        except BaseException:
            server.stop()
            raise
    return peer


@pytest.fixture(scope="module", name="palisade_peer")
def palisade_peer_fixture(tmp_path_factory):
    """One live, federating Palisade per test module."""
    peer = start_palisade_peer(tmp_path_factory.mktemp("palisade-peer"))
    yield peer
    peer.stop()
