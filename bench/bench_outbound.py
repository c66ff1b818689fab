"""Federation outbound queue: how fast a burst from a local room reaches a real Synapse.

A live Palisade (`palisade serve`, federation over loopback TLS) and a real Synapse (the test
harness's, tests/federation/synapse.py); a Synapse user joins a Palisade room; Palisade users
send a burst of messages through the client API; the clock stops when a final marker message is
readable on Synapse (the queue is ordered per destination, so everything before it arrived too),
and the count is checked. With PALISADE_REDIS_URL set a Celery worker delivers (as production);
without it the embedded thread does.

    .venv/bin/python bench/bench_outbound.py [--messages 500] [--senders 4]

Reports: client send rate, time from the first send to the marker on Synapse, delivery lag
after the last send, and delivered events per second. Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.federation.peers import palisade_peer_config  # noqa: E402
from tests.federation.synapse import start_synapse  # noqa: E402
from tests.live_server import _merge, free_port, start_server  # noqa: E402

PASSWORD = "a long and proper password"


def client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def start_worker(server, redis_url: str, queue: str, log_path: Path) -> subprocess.Popen:
    """`celery -A homeserver worker` on the server's config, consuming the federation queue."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE")}
    env.update({"PALISADE_CONFIG": str(server.config_path), "PALISADE_REDIS_URL": redis_url,
                "PALISADE_DATABASE_URL": server.database_url, "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "homeserver.settings"})
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "homeserver", "worker", "--pool",
         "solo", "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", "info"], cwd=ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "ready." not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"celery worker failed:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def latest_body(c: httpx.Client, room_id: str) -> str:
    r = c.get(f"/_matrix/client/v3/rooms/{quote(room_id)}/messages",
              params={"dir": "b", "limit": "5"})
    for e in r.json().get("chunk", []):
        if e.get("type") == "m.room.message":
            return e["content"].get("body", "")
    return ""


def count_bodies(c: httpx.Client, room_id: str, prefix: str) -> int:
    n, token = 0, None
    while True:
        params = {"dir": "b", "limit": "500", **({"from": token} if token else {})}
        body = c.get(f"/_matrix/client/v3/rooms/{quote(room_id)}/messages", params=params).json()
        n += sum(1 for e in body.get("chunk", []) if e.get("type") == "m.room.message"
                 and e["content"].get("body", "").startswith(prefix))
        token = body.get("end")
        if not body.get("chunk") or not token:
            return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--senders", type=int, default=4, help="concurrent client senders")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-outbound-"))
    redis_url = os.environ.get("PALISADE_REDIS_URL", "")
    queue = f"bench-outbound-{uuid.uuid4().hex[:8]}"
    synapse = start_synapse(tmp / "synapse")
    fed_port, client_port = free_port(), free_port()
    config = _merge(palisade_peer_config(tmp, fed_port, client_port),
                    {"federation": {"celery_queue": queue}})
    server = start_server(tmp, **config)
    worker = None
    try:
        if redis_url:
            worker = start_worker(server, redis_url, queue, tmp / "worker.log")
        users = [server.register_user(f"s{i}", PASSWORD) for i in range(args.senders)]
        ours = [client(server.base_url, u["access_token"]) for u in users]
        room_id = ours[0].post("/_matrix/client/v3/createRoom",
                               json={"preset": "public_chat"}).json()["room_id"]
        for c in ours[1:]:
            c.post(f"/_matrix/client/v3/join/{quote(room_id)}", json={}).raise_for_status()
        reader = synapse.register_user("reader", PASSWORD)
        theirs = client(synapse.base_url, reader["access_token"])
        theirs.post(f"/_matrix/client/v3/join/{quote(room_id)}",
                    params={"server_name": server.server_name}, json={}).raise_for_status()
        time.sleep(2)  # let the joins settle on both sides

        per = args.messages // args.senders

        def send(k: int) -> None:
            for i in range(per):
                ours[k].put(f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/"
                            f"b{k}-{i}", json={"msgtype": "m.text", "body": f"b{k}-{i}"}
                            ).raise_for_status()

        t0 = time.perf_counter()
        threads = [threading.Thread(target=send, args=(k,)) for k in range(args.senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ours[0].put(f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/end",
                    json={"msgtype": "m.text", "body": "end-marker"}).raise_for_status()
        t_sent = time.perf_counter()
        deadline = t_sent + 600
        while latest_body(theirs, room_id) != "end-marker":
            if time.perf_counter() > deadline:
                raise SystemExit("the marker never arrived")
            time.sleep(0.1)
        t_done = time.perf_counter()
        total = per * args.senders
        arrived = count_bodies(theirs, room_id, "b")
        result = {
            "messages": total, "senders": args.senders, "arrived": arrived,
            "mode": "celery worker" if redis_url else "embedded thread",
            "database": "postgresql" if server.database_url.startswith("postgres") else "sqlite",
            "client_send_per_s": round(total / (t_sent - t0), 1),
            "first_send_to_all_on_synapse_s": round(t_done - t0, 2),
            "lag_after_last_send_s": round(t_done - t_sent, 2),
            "delivered_per_s": round(total / (t_done - t0), 1),
        }
        print(json.dumps(result, indent=1))
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / f"outbound-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
            json.dumps(result, indent=1))
        return 0 if arrived == total else 1
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        server.stop()
        synapse.stop()


if __name__ == "__main__":
    raise SystemExit(main())
