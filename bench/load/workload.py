"""The workload, identical for every server: plain Matrix client-server API calls over HTTP/1.1
with httpx (async), plus Synapse-compatible shared-secret registration.

Phases (each bounded in request count and wall time):
  throughput  S senders (default 16) send N messages (default 2,000) into R rooms (default 8)
  latency     a receiver long-polls /sync; a sender sends one message at a time; latency =
              send start -> the receiver's /sync returns that event
  initial     a user in K rooms (default 200) with M messages each; full initial /sync, median
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from servers import BenchError

CS = "/_matrix/client/v3"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2), "p99_ms": round(percentile(ms, 99), 2),
            "mean_ms": round(statistics.fmean(ms), 2), "max_ms": round(max(ms), 2)}


@dataclass
class User:
    user_id: str
    access_token: str
    device_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Matrix:
    """Just the calls the workload needs; every non-2xx answer raises BenchError."""

    def __init__(self, base_url: str, shared_secret: str, *, max_connections: int = 64) -> None:
        self.base_url = base_url
        self.shared_secret = shared_secret
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(120.0, connect=10.0),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, user: User | None = None,
                    body: Any = None, params: dict | None = None,
                    timeout: float | None = None) -> tuple[dict, int]:
        kwargs: dict[str, Any] = {"params": params}
        if user is not None:
            kwargs["headers"] = user.headers
        if body is not None:
            kwargs["content"] = json.dumps(body).encode()
            kwargs.setdefault("headers", {})["Content-Type"] = "application/json"
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            resp = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise BenchError(f"{method} {path}: {type(e).__name__}: {e}") from None
        if not resp.is_success:
            raise BenchError(f"{method} {path} -> HTTP {resp.status_code}: {resp.text[:500]}")
        return resp.json(), len(resp.content)

    async def call(self, method: str, path: str, user: User | None = None, body: Any = None,
                   params: dict | None = None, timeout: float | None = None) -> dict:
        return (await self._call(method, path, user, body, params, timeout))[0]

    async def register(self, localpart: str, password: str, admin: bool = False) -> User:
        path = "/_synapse/admin/v1/register"
        nonce = (await self.call("GET", path))["nonce"]
        msg = b"\x00".join([nonce.encode(), localpart.encode(), password.encode(),
                            b"admin" if admin else b"notadmin"])
        mac = hmac.new(self.shared_secret.encode(), msg, hashlib.sha1).hexdigest()
        r = await self.call("POST", path, body={"nonce": nonce, "username": localpart,
                                                "password": password, "admin": admin,
                                                "mac": mac})
        return User(r["user_id"], r["access_token"], r.get("device_id", ""))

    async def create_room(self, user: User, **body: Any) -> str:
        return (await self.call("POST", f"{CS}/createRoom", user, body))["room_id"]

    async def join(self, user: User, room_id: str) -> None:
        await self.call("POST", f"{CS}/join/{quote(room_id, safe='')}", user, {})

    async def send(self, user: User, room_id: str, body: str) -> str:
        path = f"{CS}/rooms/{quote(room_id, safe='')}/send/m.room.message/{uuid.uuid4().hex}"
        r = await self.call("PUT", path, user, {"msgtype": "m.text", "body": body})
        return r["event_id"]

    async def sync(self, user: User, since: str | None = None, timeout_ms: int = 0,
                   ) -> tuple[dict, int]:
        params: dict[str, Any] = {"timeout": str(timeout_ms)}
        if since:
            params["since"] = since
        return await self._call("GET", f"{CS}/sync", user, params=params,
                                timeout=timeout_ms / 1000 + 120)


async def gather_limited(n: int, coros: list[Awaitable[Any]]) -> list[Any]:
    sem = asyncio.Semaphore(n)

    async def one(c: Awaitable[Any]) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def register_many(mx: Matrix, prefix: str, n: int, concurrency: int = 4) -> list[User]:
    run = uuid.uuid4().hex[:6]
    return await gather_limited(concurrency, [
        mx.register(f"{prefix}{i}_{run}", f"bench-password-{i}-{run}") for i in range(n)
    ])


# ---------------------------------------------------------------- phases

Hook = Callable[[], Any]


async def phase_throughput(mx: Matrix, *, senders: int, rooms: int, messages: int,
                           warmup_per_sender: int, before: Hook, after: Hook,
                           time_limit: float) -> dict[str, Any]:
    """`senders` concurrent senders, each sending its share of `messages` one after another
    into room (sender index mod `rooms`). `before`/`after` bracket the timed part (CPU
    snapshots)."""
    owner, *users = await register_many(mx, "tput", senders + 1)
    room_ids = await gather_limited(4, [
        mx.create_room(owner, preset="public_chat", name=f"throughput {i}")
        for i in range(rooms)
    ])
    await gather_limited(8, [mx.join(u, room_ids[i % rooms]) for i, u in enumerate(users)])
    # Warm-up (not timed): connections open, caches and lazy imports loaded in every worker.
    await asyncio.gather(*(
        _send_n(mx, u, room_ids[i % rooms], warmup_per_sender, f"warm-{i}", [])
        for i, u in enumerate(users)
    ))
    shares = [messages // senders + (1 if i < messages % senders else 0) for i in range(senders)]
    latencies: list[float] = []
    before()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    await asyncio.wait_for(asyncio.gather(*(
        _send_n(mx, u, room_ids[i % rooms], shares[i], f"msg-{i}", latencies)
        for i, u in enumerate(users)
    )), time_limit)
    elapsed = time.perf_counter() - t0
    client_cpu = time.process_time() - cpu0
    after()
    return {
        "messages": sum(shares), "senders": senders, "rooms": rooms,
        "elapsed_s": round(elapsed, 3), "msgs_per_s": round(sum(shares) / elapsed, 1),
        "send_request_latency": summary_ms(latencies),
        "load_generator_cpu_s": round(client_cpu, 2),
    }


async def _send_n(mx: Matrix, user: User, room_id: str, n: int, tag: str,
                  latencies: list[float]) -> None:
    for k in range(n):
        t = time.perf_counter()
        await mx.send(user, room_id, f"{tag}-{k} the quick brown fox jumps over the lazy dog")
        latencies.append(time.perf_counter() - t)


async def phase_latency(mx_send: Matrix, mx_recv: Matrix, *, samples: int, pause_s: float,
                        time_limit: float) -> dict[str, Any]:
    """One message at a time; the receiver's long-poll (timeout 30 s) is given `pause_s` to be
    parked on the server before each send."""
    sender, receiver = await register_many(mx_send, "lat", 2)
    room_id = await mx_send.create_room(sender, preset="public_chat", name="latency")
    await mx_recv.join(receiver, room_id)
    first, _ = await mx_recv.sync(receiver)
    since = first["next_batch"]
    arrived: dict[str, float] = {}
    waiters: dict[str, asyncio.Event] = {}
    syncs = 0
    stop = asyncio.Event()

    async def receive() -> None:
        nonlocal since, syncs
        while not stop.is_set():
            body, _ = await mx_recv.sync(receiver, since, timeout_ms=30000)
            now = time.perf_counter()
            syncs += 1
            since = body["next_batch"]
            room = body.get("rooms", {}).get("join", {}).get(room_id, {})
            for ev in room.get("timeline", {}).get("events", []):
                tag = (ev.get("content") or {}).get("body", "")
                if tag.startswith("lat-") and tag not in arrived:
                    arrived[tag] = now
                    if tag in waiters:
                        waiters[tag].set()

    recv_task = asyncio.create_task(receive())
    latencies: list[float] = []
    send_times: list[float] = []
    deadline = time.monotonic() + time_limit
    try:
        for i in range(samples):
            if time.monotonic() > deadline:
                raise BenchError(f"latency phase exceeded {time_limit}s after {i} samples")
            if recv_task.done():
                recv_task.result()  # re-raise the receiver's error
                raise BenchError("the /sync receiver stopped")
            await asyncio.sleep(pause_s)
            tag = f"lat-{i}"
            ev = waiters[tag] = asyncio.Event()
            t0 = time.perf_counter()
            await mx_send.send(sender, room_id, tag)
            send_times.append(time.perf_counter() - t0)
            try:
                await asyncio.wait_for(ev.wait(), 30)
            except TimeoutError:
                raise BenchError(
                    f"message {tag} did not reach the receiver's /sync within 30s") from None
            latencies.append(arrived[tag] - t0)
    finally:
        stop.set()
        recv_task.cancel()
        try:
            await recv_task
        except (asyncio.CancelledError, Exception):
            pass
    return {"samples": len(latencies), "pause_between_sends_ms": pause_s * 1000,
            "delivery": summary_ms(latencies), "send_request": summary_ms(send_times),
            "receiver_syncs": syncs}


async def phase_initial_sync(mx: Matrix, *, rooms: int, messages_per_room: int,
                             repeats: int, time_limit: float, before: Hook = lambda: None,
                             after: Hook = lambda: None) -> dict[str, Any]:
    (user,) = await register_many(mx, "isync", 1)
    t0 = time.perf_counter()
    room_ids = await asyncio.wait_for(gather_limited(8, [
        mx.create_room(user, preset="private_chat", name=f"room {i}", topic=f"topic {i}")
        for i in range(rooms)
    ]), time_limit)
    await asyncio.wait_for(gather_limited(8, [
        mx.send(user, rid, f"hello {k} in {rid}")
        for rid in room_ids for k in range(messages_per_room)
    ]), time_limit)
    setup_s = time.perf_counter() - t0
    times: list[float] = []
    sizes: list[int] = []
    rooms_seen = events_seen = 0
    before()
    for _ in range(repeats):
        t = time.perf_counter()
        body, size = await mx.sync(user, None, 0)
        times.append(time.perf_counter() - t)
        sizes.append(size)
        joined = body.get("rooms", {}).get("join", {})
        rooms_seen = len(joined)
        events_seen = sum(len(r.get("timeline", {}).get("events", [])) +
                          len(r.get("state", {}).get("events", [])) for r in joined.values())
    after()
    if rooms_seen != rooms:
        raise BenchError(f"initial sync returned {rooms_seen} joined rooms, expected {rooms}")
    return {
        "rooms": rooms, "messages_per_room": messages_per_room, "repeats": repeats,
        "setup_s": round(setup_s, 2),
        "median_s": round(statistics.median(times), 4), "first_s": round(times[0], 4),
        "min_s": round(min(times), 4), "all_s": [round(t, 4) for t in times],
        "response_bytes": sizes[-1], "timeline_plus_state_events": events_seen,
    }
