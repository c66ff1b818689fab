"""Protocol-core throughput: events hashed+signed per second, auth checks per second, and state
resolution over a 1,000-event DAG with two conflicting forks.

    .venv/bin/python bench/bench_protocol.py [--seconds 2]

Pure Python, no database: this measures homeserver/protocol alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from homeserver.protocol.auth_rules import check_auth_rules
from homeserver.protocol.event_builder import build_event
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.protocol.signing import generate_signing_key

RV = KNOWN_ROOM_VERSIONS["10"]
SERVER = "bench.example.org"
ALICE = f"@alice:{SERVER}"


def rate(fn, seconds: float) -> tuple[float, int]:
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        fn()
        n += 1
    return n / (time.perf_counter() - start), n


def bench_build(seconds: float) -> float:
    key = generate_signing_key()
    content = {"msgtype": "m.text", "body": "The patient in bed 4 needs a follow-up." * 2}

    def one() -> None:
        build_event(
            room_version=RV,
            room_id="!r:" + SERVER,
            sender=ALICE,
            event_type="m.room.message",
            content=content,
            state_key=None,
            prev_events=["$" + "a" * 43],
            auth_events=["$" + "b" * 43, "$" + "c" * 43],
            depth=10,
            origin_server_ts=1_700_000_000_000,
            server_name=SERVER,
            signing_key=key,
        )

    return rate(one, seconds)[0]


def _room(key):
    """A small room: create, join, power levels, join rules; returns (auth map, builder)."""

    def ev(etype, content, state_key, prev, auth):
        return build_event(
            room_version=RV,
            room_id="!r:" + SERVER,
            sender=ALICE,
            event_type=etype,
            content=content,
            state_key=state_key,
            prev_events=prev,
            auth_events=auth,
            depth=len(prev) + 1,
            origin_server_ts=1_700_000_000_000,
            server_name=SERVER,
            signing_key=key,
        )

    create = ev("m.room.create", {"creator": ALICE, "room_version": "10"}, "", [], [])
    join = ev("m.room.member", {"membership": "join"}, ALICE, [create.event_id], [create.event_id])
    pl = ev(
        "m.room.power_levels",
        {"users": {ALICE: 100}},
        "",
        [join.event_id],
        [create.event_id, join.event_id],
    )
    auth = {
        ("m.room.create", ""): create,
        ("m.room.member", ALICE): join,
        ("m.room.power_levels", ""): pl,
    }
    msg = ev(
        "m.room.message",
        {"body": "x"},
        None,
        [pl.event_id],
        [create.event_id, join.event_id, pl.event_id],
    )
    return auth, msg


def bench_auth(seconds: float) -> float:
    auth, msg = _room(generate_signing_key())
    return rate(lambda: check_auth_rules(msg, auth), seconds)[0]


def bench_state_res(repeats: int) -> list[float] | None:
    try:
        from homeserver.protocol.state_res_v2 import resolve_state
        from tests.protocol.dag_gen import generate_forked_dag
    except ImportError as e:
        print(f"state resolution bench unavailable: {e}")
        return None
    times = []
    for seed in range(repeats):
        dag = generate_forked_dag(1000, seed=seed)
        start = time.perf_counter()
        resolve_state(dag.room_version, dag.state_sets, dag.get_event)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"events hashed+signed+id'd per second (room v10): {bench_build(args.seconds):,.0f}")
    print(f"auth checks per second (m.room.message, v10):     {bench_auth(args.seconds):,.0f}")
    times = bench_state_res(args.repeats)
    if times:
        print(
            f"state resolution, 1,000-event DAG with two forks: median "
            f"{statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
            f"({len(times)} DAGs)"
        )


if __name__ == "__main__":
    main()
