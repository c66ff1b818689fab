"""E2EE over federation between two live Palisades: how long a client waits for other servers'
keys, and how fast a to-device message crosses.

Two `palisade serve` processes federating over loopback TLS (tests/federation/peers.py). On B,
`--users` users each upload device keys and one-time keys and join a room on A (so A tracks
their device lists). On A, one client then measures:

  * /keys/query for all of B's users: the first (cold: A fetches each list with
    GET /user/devices and caches it) and `--rounds` warm ones (answered from the cache);
  * /keys/query for B's users who share no room (always a user/keys/query round trip);
  * /keys/claim of one key per user (`--rounds` rounds, a user/keys/claim round trip each);
  * to-device: `--messages` messages from A to a device on B, each timed from the send until
    the recipient's /sync returns it (queue, transaction, handle_edu, /sync wake-up).

    .venv/bin/python bench/bench_e2ee_federation.py [--users 20] [--rounds 20] [--messages 20]

With PALISADE_DATABASE_URL / PALISADE_REDIS_URL set, both servers use PostgreSQL (their own
databases) and a Celery worker each, as in production. Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import canonicaljson
import nacl.public
import nacl.signing

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.federation.peers import start_palisade_peer  # noqa: E402

PASSWORD = "a long and proper password"
V3 = "/_matrix/client/v3"


class ClientDevice:
    """A device's ed25519/curve25519 keys, signed as a client signs them."""

    def __init__(self, user_id: str, device_id: str) -> None:
        self.user_id, self.device_id = user_id, device_id
        self.ed25519 = nacl.signing.SigningKey.generate()
        self.n = 0

    def sign(self, obj: dict) -> dict:
        msg = canonicaljson.encode_canonical_json(obj)
        sig = base64.b64encode(self.ed25519.sign(msg).signature).decode().rstrip("=")
        return {**obj, "signatures": {self.user_id: {f"ed25519:{self.device_id}": sig}}}

    @staticmethod
    def b64key() -> str:
        key = bytes(nacl.public.PrivateKey.generate().public_key)
        return base64.b64encode(key).decode().rstrip("=")

    def device_keys(self) -> dict:
        ed = base64.b64encode(bytes(self.ed25519.verify_key)).decode().rstrip("=")
        return self.sign({"user_id": self.user_id, "device_id": self.device_id,
                          "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
                          "keys": {f"curve25519:{self.device_id}": self.b64key(),
                                   f"ed25519:{self.device_id}": ed}})

    def one_time_keys(self, n: int) -> dict:
        out = {}
        for _ in range(n):
            self.n += 1
            out[f"signed_curve25519:K{self.n:05d}"] = self.sign({"key": self.b64key()})
        return out


def ms(seconds: list[float]) -> dict:
    s = sorted(x * 1000 for x in seconds)
    return {"n": len(s), "p50_ms": round(statistics.median(s), 1),
            "p90_ms": round(s[int(0.9 * (len(s) - 1))], 1), "max_ms": round(s[-1], 1)}


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--messages", type=int, default=20)
    args = ap.parse_args()
    if os.environ.get("PALISADE_REDIS_URL"):
        # The peers then start Celery workers through the test helpers, which need Django.
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homeserver.settings")
        import django

        django.setup()
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2ee-fed-"))
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    a = start_palisade_peer(tmp / "a")
    try:
        b = start_palisade_peer(tmp / "b")
    except BaseException:
        a.stop()
        raise
    try:
        results = run(a, b, args)
    finally:
        b.stop()
        a.stop()
    results["args"] = vars(args)
    out = ROOT / "bench" / "results" / f"e2ee-federation-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"-> {out}")


def run(a, b, args) -> dict:
    tag = uuid.uuid4().hex[:6]
    alice = a.register(f"alice{tag}", PASSWORD)
    room = alice.post(V3 + "/createRoom", {"preset": "public_chat"})["room_id"]
    sharing, loners = [], []
    for i in range(args.users * 2):
        api = b.register(f"u{i}{tag}", PASSWORD)
        dev = ClientDevice(api.user_id, api.user.device_id)
        api.post(V3 + "/keys/upload", {"device_keys": dev.device_keys(),
                                       "one_time_keys": dev.one_time_keys(args.rounds + 1)})
        if i < args.users:
            api.post(f"{V3}/join/{quote(room, safe='')}", {}, params={"server_name":
                                                                       a.server_name})
            sharing.append((api, dev))
        else:
            loners.append((api, dev))
    query = {"device_keys": {api.user_id: [] for api, _ in sharing}, "timeout": 30000}
    cold, first = timed(lambda: alice.post(V3 + "/keys/query", query))
    assert not first["failures"] and len(first["device_keys"]) == args.users, first["failures"]
    warm = [timed(lambda: alice.post(V3 + "/keys/query", query))[0] for _ in range(args.rounds)]
    lone_q = {"device_keys": {api.user_id: [] for api, _ in loners}, "timeout": 30000}
    direct = [timed(lambda: alice.post(V3 + "/keys/query", lone_q))[0]
              for _ in range(args.rounds)]
    claim_q = {"one_time_keys": {api.user_id: {dev.device_id: "signed_curve25519"}
                                 for api, dev in sharing}, "timeout": 30000}
    claims = []
    for _ in range(args.rounds):
        t, got = timed(lambda: alice.post(V3 + "/keys/claim", claim_q))
        assert len(got["one_time_keys"]) == args.users, got["failures"]
        claims.append(t)
    to_device = []
    bob_api, bob = sharing[0]
    since = bob_api.get(V3 + "/sync", params={"timeout": 0})["next_batch"]
    for i in range(args.messages):
        start = time.perf_counter()
        alice.put(f"{V3}/sendToDevice/m.bench/{tag}{i}",
                  {"messages": {bob_api.user_id: {bob.device_id: {"i": i}}}})
        while True:
            resp = bob_api.get(V3 + "/sync", params={"timeout": 10000, "since": since})
            since = resp["next_batch"]
            if any(e["content"].get("i") == i for e in resp["to_device"]["events"]):
                break
            if time.perf_counter() - start > 60:
                raise SystemExit(f"to-device message {i} did not arrive in 60 s")
        to_device.append(time.perf_counter() - start)
    return {"keys_query_cold_ms": round(cold * 1000, 1),
            "keys_query_cached": ms(warm), "keys_query_direct": ms(direct),
            "keys_claim": ms(claims), "to_device_delivery": ms(to_device)}


if __name__ == "__main__":
    main()
