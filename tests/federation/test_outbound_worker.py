"""The outbound queue worked by real Celery worker processes, and killed under load (issue 7):
"Killing the Celery worker in the middle of a 200-message burst to Synapse loses nothing:
after it restarts, every event arrives, in order."

- A live Palisade (`palisade serve`) federating with a real Synapse over loopback TLS: a Synapse
  user joins a Palisade room; Palisade sends a 200-message burst; its Celery worker (`celery -A
  homeserver worker -B`, beat embedded for the periodic sweep) is killed with SIGKILL mid-burst
  and restarted; Synapse's client API must then show every message exactly once, in order.
- The same crash against the recording receiver (a test double that can hold a transaction,
  tests/federation/outbound_receiver.py), where the transaction ids are visible: a transaction
  interrupted by the kill is re-sent under the SAME txn id after the restart.

Both need Redis (Celery's broker): with PALISADE_REDIS_URL unset they are skipped locally and
fail under CI. The embedded mode (no Redis, delivery on a thread of the server) is covered by
the first test, which runs in both modes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import pytest
from django.db import transaction

from homeserver.models import OutboundItem
from tests.federation.outbound_receiver import start_receiver
from tests.federation.peers import palisade_peer_config
from tests.federation.synapse import synapse_fixture  # noqa: F401 - fixture synapse
from tests.federation.test_outbound_queue import FED, alice, remote_join
from tests.live_server import _merge, free_port, start_server

pytestmark = pytest.mark.live

PASSWORD = "a long and proper password"
REPO_ROOT = Path(__file__).resolve().parents[2]


def redis_url_or_skip() -> str:
    url = os.environ.get("PALISADE_REDIS_URL", "")
    if url:
        return url
    reason = ("needs a Celery worker process to kill, hence Redis: set PALISADE_REDIS_URL "
              "(e.g. redis://127.0.0.1:6379/12)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


class Worker:
    """`celery -A homeserver worker -B` (beat embedded: the periodic queue sweep), its own
    queue, started and SIGKILLed by the test."""

    def __init__(self, env: dict[str, str], queue: str, directory: Path) -> None:
        self.env, self.queue, self.directory = env, queue, directory
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.directory / f"worker-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        celery = Path(sys.executable).parent / "celery"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(celery), "-A", "homeserver", "worker", "-B", "--pool", "solo",
                 "-Q", self.queue, "-s", str(self.directory / "beat-schedule"),
                 "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
                cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if "ready." in self.log_path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready:\n{self.log()[-3000:]}")

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "worker not running"
        os.killpg(self.proc.pid, signal.SIGKILL)  # the worker and its embedded beat
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.directory.glob("worker-*.log")))


def worker_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE")}
    env.update({"PALISADE_DATABASE_URL": database_url, "PALISADE_REDIS_URL": redis_url,
                "DJANGO_SETTINGS_MODULE": "homeserver.settings", "PYTHONUNBUFFERED": "1",
                **extra})
    return env


def poll(fetch, until, timeout: float = 120.0, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    result = fetch()
    while not until(result) and time.monotonic() < deadline:
        time.sleep(interval)
        result = fetch()
    return result


# --- a live Palisade and a real Synapse --------------------------------------------------------


class Federation:
    """Palisade (+ its worker when Redis is configured) and a Synapse user in a Palisade room."""

    def __init__(self, tmp: Path, synapse) -> None:
        self.redis_url = os.environ.get("PALISADE_REDIS_URL", "")
        self.queue = f"palisade-outbound-live-{uuid.uuid4().hex[:10]}"
        fed_port, client_port = free_port(), free_port()
        config = _merge(palisade_peer_config(tmp, fed_port, client_port), {"federation": {
            "celery_queue": self.queue, "retry_initial_seconds": 0.5,
            "retry_max_seconds": 2, "sweep_interval_seconds": 2,
            "request_timeout_seconds": 20}})
        if self.redis_url:
            config["redis"] = {"url": self.redis_url}
        self.server = start_server(tmp, **config)
        self.worker = None
        if self.redis_url:
            env = worker_env(self.server.database_url, self.redis_url,
                             PALISADE_CONFIG=str(self.server.config_path))
            self.worker = Worker(env, self.queue, tmp)
            self.worker.start()
        self.synapse = synapse

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.server.stop()

    def logs(self) -> str:
        text = self.server.log()[-3000:]
        if self.worker is not None:
            text += "\n--- worker ---\n" + self.worker.log()[-6000:]
        return text + "\n--- synapse ---\n" + self.synapse.log()[-3000:]


@pytest.fixture(scope="module")
def federation(tmp_path_factory, synapse):
    f = Federation(tmp_path_factory.mktemp("outbound-live"), synapse)
    yield f
    f.stop()


def client(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                        timeout=60)


def shared_room(f: Federation, tag: str) -> tuple[httpx.Client, httpx.Client, str]:
    """A public Palisade room with a Synapse user joined to it over federation."""
    us = f.server.register_user(f"sender{tag}", PASSWORD)
    them = f.synapse.register_user(f"reader{tag}", PASSWORD)
    ours = client(f.server.base_url, us["access_token"])
    theirs = client(f.synapse.base_url, them["access_token"])
    r = ours.post("/_matrix/client/v3/createRoom", json={"preset": "public_chat"})
    assert r.status_code == 200, r.text
    room_id = r.json()["room_id"]
    r = theirs.post(f"/_matrix/client/v3/join/{quote(room_id)}",
                    params={"server_name": f.server.server_name}, json={})
    assert r.status_code == 200, f"{r.text}\n{f.logs()}"
    # Our side sees the Synapse user joined (their join came back through send_join).
    members = poll(lambda: ours.get(f"/_matrix/client/v3/rooms/{quote(room_id)}/joined_members")
                   .json().get("joined", {}), lambda m: them["user_id"] in m, timeout=60)
    assert them["user_id"] in members
    return ours, theirs, room_id


def synapse_bodies(theirs: httpx.Client, room_id: str, prefix: str) -> list[str]:
    """Every m.room.message body with `prefix` Synapse has in the room, oldest first (read
    backwards through /messages, as a client scrolling up would)."""
    out: list[str] = []
    token = None
    while True:
        params = {"dir": "b", "limit": "100"}
        if token:
            params["from"] = token
        r = theirs.get(f"/_matrix/client/v3/rooms/{quote(room_id)}/messages", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        out += [e["content"].get("body", "") for e in body.get("chunk", [])
                if e.get("type") == "m.room.message"]
        token = body.get("end")
        if not body.get("chunk") or not token:
            break
    return [b for b in reversed(out) if b.startswith(prefix)]


def burst(ours: httpx.Client, room_id: str, prefix: str, n: int, sent: list[str]) -> None:
    for i in range(n):
        r = ours.put(f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/"
                     f"{prefix}{i}", json={"msgtype": "m.text", "body": f"{prefix}{i}"})
        assert r.status_code == 200, r.text
        sent.append(r.json()["event_id"])


def test_a_burst_reaches_synapse_in_order(federation):
    """120 messages (3 transactions' worth): all arrive, in order, once (both modes)."""
    ours, theirs, room_id = shared_room(federation, "a")
    sent: list[str] = []
    burst(ours, room_id, "a", 120, sent)
    want = [f"a{i}" for i in range(120)]
    got = poll(lambda: synapse_bodies(theirs, room_id, "a"), lambda b: len(b) >= 120)
    assert got == want, federation.logs()


def test_killing_the_worker_mid_burst_to_synapse_loses_nothing(federation):
    redis_url_or_skip()
    ours, theirs, room_id = shared_room(federation, "k")
    sent: list[str] = []
    sender = threading.Thread(target=burst, args=(ours, room_id, "k", 200, sent), daemon=True)
    sender.start()
    # Mid-burst: Synapse has some of it, the rest is still being sent by our client.
    arrived = poll(lambda: synapse_bodies(theirs, room_id, "k"), lambda b: len(b) >= 10,
                   interval=0.1)
    assert len(arrived) >= 10, federation.logs()
    federation.worker.kill9()
    assert len(sent) < 200, "the burst ended before the kill; nothing was tested"
    sender.join(timeout=300)
    assert len(sent) == 200
    federation.worker.start()  # worker_ready: stale lease freed, queue swept
    want = [f"k{i}" for i in range(200)]
    got = poll(lambda: synapse_bodies(theirs, room_id, "k"), lambda b: len(b) >= 200,
               timeout=180)
    assert got == want, f"{len(got)} of 200 arrived\n{federation.logs()}"


# --- the same crash, with the transaction ids visible -------------------------------------------


@pytest.fixture
def receiver():
    r = start_receiver()
    yield r
    r.stop()


@pytest.mark.django_db(transaction=True)
def test_a_transaction_interrupted_by_a_kill_is_resent_under_the_same_txn_id(
        receiver, settings, tmp_path):
    from django.conf import settings as dj

    from homeserver.services.events.send import do_send_event
    from homeserver.services.rooms.create import do_create_room
    from tests.accounts.conftest import configure

    redis_url = redis_url_or_skip()
    queue = f"palisade-outbound-kill-{uuid.uuid4().hex[:10]}"
    fed = {**FED, "celery_queue": queue, "sweep_interval_seconds": 2}
    configure(settings, federation=fed)
    test_db = dj.DATABASES["default"]["NAME"]
    url = urlunsplit(urlsplit(os.environ["PALISADE_DATABASE_URL"])._replace(path=f"/{test_db}"))
    env = worker_env(url, redis_url, **{
        "PALISADE__FEDERATION__" + k.upper(): str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in fed.items()})
    worker = Worker(env, queue, tmp_path)
    worker.start()
    try:
        room_id = do_create_room(alice(), {"preset": "public_chat"})
        remote_join(room_id, f"@reader:{receiver.server_name}")
        receiver.gate.clear()  # the receiver takes the first transaction and holds it
        with transaction.atomic():
            for i in range(60):
                do_send_event(room_id=room_id, sender=alice(), event_type="m.room.message",
                              content={"msgtype": "m.text", "body": f"c{i}"})
        poll(lambda: receiver.waiting, lambda n: n >= 1, timeout=60)
        worker.kill9()  # mid-transaction: the receiver has it, the sender never hears back
        receiver.gate.set()  # the receiver processes it (200 to a dead connection)
        poll(lambda: len(receiver.delivered), lambda n: n >= 1, timeout=30)
        (interrupted,) = receiver.delivered
        assert len(interrupted.body["pdus"]) == 50
        assert OutboundItem.objects.filter(txn_id=interrupted.txn_id).count() == 50  # kept
        worker.start()
        receiver.wait_for(lambda: len(receiver.pdus()) == 60, timeout=120, what="60 PDUs")
        # The first transaction after the restart is the interrupted one, re-sent as is; the
        # receiver deduplicated it; then the rest followed.
        txns = [a.txn_id for a in receiver.attempts]
        assert txns[0] == txns[1] == interrupted.txn_id, txns
        assert receiver.attempts[1].body["pdus"] == interrupted.body["pdus"]
        assert [p["content"]["body"] for p in receiver.pdus()] == [f"c{i}" for i in range(60)]
        poll(lambda: OutboundItem.objects.exists(), lambda x: not x, timeout=30)
    finally:
        worker.stop()
