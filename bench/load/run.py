"""Load benchmark: the same Matrix workload against Palisade and against Synapse (PyPI
`matrix-synapse`, in its own virtualenv), both on the same PostgreSQL, one after the other.

    .venv/bin/python bench/load/run.py                      # both servers, defaults
    .venv/bin/python bench/load/run.py --workers 2          # Palisade with 2 uvicorn workers
    .venv/bin/python bench/load/run.py --servers palisade --profile palisade   # + py-spy profile

Palisade: `palisade serve --workers N` (default 1, the configuration's default; like Synapse's
single process) with Redis as channel layer and cache, rate
limits off. Synapse: single process (its default), config generated with --generate-config then
edited (see synapse_conf.py). Each gets a freshly created database (Synapse's with C collation),
dropped at the end with the data directory (--keep keeps both).

Measured (see docs/benchmarks.md): (a) message send throughput at concurrency 16, (b) send->sync
delivery latency p50/p95, (c) initial /sync time in 200 rooms, (d) RSS of all server processes
after the load, (e) server CPU seconds per message sent. Prints a table with Palisade/Synapse
ratios against the targets and writes JSON to bench/results/. Only 127.0.0.1 is contacted.

Needs psutil in the running interpreter (bench only): `.venv/bin/pip install psutil`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import psutil  # noqa: F401
except ImportError:
    sys.exit("bench/load needs psutil: .venv/bin/pip install psutil")

import proctree
from servers import (
    REPO_ROOT,
    SYNAPSE_VENV_DEFAULT,
    BenchError,
    ConnectionSampler,
    Server,
    database_stats,
    start_palisade,
    start_synapse,
)
from workload import Matrix, phase_initial_sync, phase_latency, phase_throughput

RESULTS_DIR = REPO_ROOT / "bench" / "results"
SERVERS = ("palisade", "synapse")

# metric key, label, unit, target ratio Palisade/Synapse (None: info only), "<=" or ">="
TARGETS: list[tuple[str, str, str, float, str]] = [
    ("throughput_msgs_per_s", "(a) send throughput, c=16", "msg/s", 2.0, ">="),
    ("cpu_s_per_event", "(e) server CPU per event", "ms", 0.5, "<="),
    ("delivery_p50_ms", "(b) send->sync latency p50", "ms", 1.0, "<="),
    ("delivery_p95_ms", "(b) send->sync latency p95", "ms", None, ""),
    ("initial_sync_median_s", "(c) initial sync, 200 rooms", "s", 1.0, "<="),
    ("rss_mib", "(d) RSS after load, all procs", "MiB", 0.75, "<="),
]


class Interrupted(Exception):
    pass


def _on_signal(signum: int, frame: object) -> None:
    raise Interrupted(f"signal {signum}")


def machine_mark() -> tuple[float, float]:
    return time.monotonic(), proctree.system_busy_cpu()


def machine_busy_since(mark: tuple[float, float]) -> float:
    """Cores the whole machine kept busy since `mark` (server, PostgreSQL, load generator and
    anything else running)."""
    return round((proctree.system_busy_cpu() - mark[1]) / (time.monotonic() - mark[0]), 2)


def measure(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Run every phase against a started server; returns the result record."""
    result: dict[str, Any] = {"server": server.kind, "base_url": server.base_url,
                              "database": server.db_name, **server.details}
    waited = proctree.wait_idle(server.pid, max_wait=args.idle_wait)
    result["idle_wait_before_s"] = round(waited, 1)
    if args.quiet_wait > 0:
        waited, busy = proctree.wait_machine_quiet(args.quiet_wait)
        result["machine_quiet_wait"] = {"waited_s": round(waited, 1),
                                        "busy_cores_at_start": round(busy, 2)}
        if busy >= 0.3:
            print(f"  [{server.kind}] warning: the machine is still busy ({busy:.2f} cores used "
                  "by other processes); wall-clock numbers will be pessimistic", flush=True)
    mem_start = proctree.memory(proctree.tree(server.pid))
    result["rss_mib_at_start"] = round(mem_start["rss_bytes"] / 2**20, 1)

    profiler = None

    async def run_all() -> None:
        mx = Matrix(server.base_url, server.shared_secret)
        mx_recv = Matrix(server.base_url, server.shared_secret, max_connections=4)
        try:
            snaps: dict[str, Any] = {}

            def before() -> None:
                nonlocal profiler
                time.sleep(1.5)  # let PostgreSQL flush the warm-up's statistics
                snaps["pg0"] = database_stats(server.pg_url, server.db_name)
                snaps["cpu0"] = proctree.cpu_snapshot(proctree.tree(server.pid))
                snaps["sys0"] = proctree.system_busy_cpu()
                snaps["conns"] = ConnectionSampler(server.pg_url, server.db_name).start()
                if server.kind in args.profile and "throughput" in args.profile_phases:
                    profiler = start_profiler(server, args, "throughput")

            def after() -> None:
                nonlocal profiler
                snaps["cpu1"] = proctree.cpu_snapshot(proctree.tree(server.pid))
                snaps["sys1"] = proctree.system_busy_cpu()
                snaps["conns_max_mean"] = snaps["conns"].stop()
                if profiler is not None:
                    result["profile_throughput"] = stop_profiler(profiler)
                    profiler = None

            def before_isync() -> None:
                nonlocal profiler
                if server.kind in args.profile and "initial_sync" in args.profile_phases:
                    profiler = start_profiler(server, args, "initial_sync")

            def after_isync() -> None:
                nonlocal profiler
                if profiler is not None:
                    result["profile_initial_sync"] = stop_profiler(profiler)
                    profiler = None

            print(f"  [{server.kind}] (a) throughput: {args.messages} messages, "
                  f"{args.concurrency} senders, {args.rooms} rooms", flush=True)
            tp = await phase_throughput(
                mx, senders=args.concurrency, rooms=args.rooms, messages=args.messages,
                warmup_per_sender=args.warmup, before=before, after=after,
                time_limit=args.phase_timeout)
            cpu = proctree.cpu_delta(snaps["cpu0"], snaps["cpu1"])
            n = tp["messages"]
            tp["server_cpu_s"] = round(cpu, 3)
            tp["server_cpu_s_per_event"] = cpu / n
            tp["server_cpu_utilisation_cores"] = round(cpu / tp["elapsed_s"], 2)
            # Everything else busy on the machine meanwhile: PostgreSQL, Redis, the load
            # generator, and anyone else's processes (a large value makes wall times suspect).
            machine = snaps["sys1"] - snaps["sys0"]
            tp["machine_busy_cores"] = round(machine / tp["elapsed_s"], 2)
            tp["other_busy_cores"] = round(
                (machine - cpu - tp["load_generator_cpu_s"]) / tp["elapsed_s"], 2)
            time.sleep(1.5)
            pg1 = database_stats(server.pg_url, server.db_name)
            tp["postgres_per_event"] = {k: round((pg1[k] - snaps["pg0"].get(k, 0)) / n, 3)
                                        for k in pg1}
            tp["postgres_connections_max"], mean_conns = snaps["conns_max_mean"]
            tp["postgres_connections_mean"] = round(mean_conns, 1)
            tp["postgres_active_backends_by_wait"] = snaps["conns"].top_waits()
            result["throughput"] = tp
            print(f"      {tp['msgs_per_s']} msg/s, {cpu / n * 1000:.2f} ms server CPU per event; "
                  f"per event in PostgreSQL: {tp['postgres_per_event'].get('active_time')} ms "
                  f"active, {tp['postgres_per_event'].get('xact_commit')} commits, "
                  f"{tp['postgres_per_event'].get('sessions')} new connections (at most "
                  f"{tp['postgres_connections_max']} open); other load on the machine "
                  f"{tp['other_busy_cores']} cores", flush=True)
            for what, mean in tp["postgres_active_backends_by_wait"][:4]:
                print(f"        {mean:5.2f} backends on average in {what}", flush=True)

            proctree.wait_idle(server.pid, max_wait=args.idle_wait)
            print(f"  [{server.kind}] (b) delivery latency: {args.latency_samples} messages",
                  flush=True)
            m0 = machine_mark()
            lat = await phase_latency(mx, mx_recv, samples=args.latency_samples,
                                      pause_s=args.latency_pause_ms / 1000,
                                      time_limit=args.phase_timeout)
            lat["machine_busy_cores"] = machine_busy_since(m0)
            result["latency"] = lat
            print(f"      p50 {lat['delivery']['p50_ms']} ms, p95 {lat['delivery']['p95_ms']} ms",
                  flush=True)

            proctree.wait_idle(server.pid, max_wait=args.idle_wait)
            print(f"  [{server.kind}] (c) initial sync: {args.sync_rooms} rooms x "
                  f"{args.sync_messages} messages, {args.sync_repeats} syncs", flush=True)
            m0 = machine_mark()
            isync = await phase_initial_sync(
                mx, rooms=args.sync_rooms, messages_per_room=args.sync_messages,
                repeats=args.sync_repeats, time_limit=args.phase_timeout,
                before=before_isync, after=after_isync)
            isync["machine_busy_cores_incl_setup"] = machine_busy_since(m0)
            result["initial_sync"] = isync
            print(f"      median {isync['median_s']} s (first {isync['first_s']} s, "
                  f"{isync['response_bytes']} bytes)", flush=True)
        finally:
            if profiler is not None:
                stop_profiler(profiler)
            await mx.aclose()
            await mx_recv.aclose()

    asyncio.run(asyncio.wait_for(run_all(), args.total_timeout))
    proctree.wait_idle(server.pid, max_wait=min(args.idle_wait, 15))
    mem = proctree.memory(proctree.tree(server.pid))
    result["memory_after_load"] = mem
    print(f"  [{server.kind}] (d) RSS after load: {mem['rss_bytes'] / 2**20:.1f} MiB over "
          f"{mem['processes']} processes (PSS {mem['pss_bytes'] / 2**20:.1f} MiB)", flush=True)
    result["metrics"] = {
        "throughput_msgs_per_s": result["throughput"]["msgs_per_s"],
        "cpu_s_per_event": result["throughput"]["server_cpu_s_per_event"],
        "delivery_p50_ms": result["latency"]["delivery"]["p50_ms"],
        "delivery_p95_ms": result["latency"]["delivery"]["p95_ms"],
        "initial_sync_median_s": result["initial_sync"]["median_s"],
        "rss_mib": round(mem["rss_bytes"] / 2**20, 1),
    }
    return result


# ---------------------------------------------------------------- optional py-spy profile


def find_py_spy(explicit: str | None) -> str:
    for cand in (explicit, shutil.which("py-spy"), "/tmp/palisade-bench-tools/bin/py-spy"):
        if cand and Path(cand).exists():
            return cand
    raise BenchError("--profile needs py-spy: python3 -m venv /tmp/palisade-bench-tools && "
                     "/tmp/palisade-bench-tools/bin/pip install py-spy (or pass --py-spy PATH)")


def start_profiler(server: Server, args: argparse.Namespace, phase: str) -> dict[str, Any]:
    mode = "gil" if args.profile_gil else "wall"
    out = RESULTS_DIR / (f"profile-{server.kind}-{phase}-{mode}-"
                         f"{dt.datetime.now():%Y%m%d-%H%M%S}.txt")
    cmd = [find_py_spy(args.py_spy), "record", "--pid", str(server.pid), "--subprocesses",
           "--format", "raw", "--rate", "100", "--nonblocking", "--duration",
           str(int(args.phase_timeout)), "--output", str(out)]
    if args.profile_gil:
        cmd.append("--gil")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attach before the timed part starts
    return {"proc": proc, "out": out}


def stop_profiler(p: dict[str, Any]) -> str:
    proc: subprocess.Popen = p["proc"]
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return str(p["out"])


# ---------------------------------------------------------------- report


def ratio_table(results: dict[str, dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    pal = results.get("palisade", {}).get("metrics")
    syn = results.get("synapse", {}).get("metrics")
    rows: list[dict[str, Any]] = []
    header = (f"{'metric':34} {'Palisade':>12} {'Synapse':>12} {'P/S':>7}  "
              f"{'target':>8}  result")
    lines = [header, "-" * len(header)]
    for key, label, unit, target, op in TARGETS:
        p = pal.get(key) if pal else None
        s = syn.get(key) if syn else None
        scale = 1000 if key == "cpu_s_per_event" else 1
        ratio = (p / s) if (p is not None and s) else None
        met = None
        if ratio is not None and target is not None:
            met = ratio >= target if op == ">=" else ratio <= target
        rows.append({"metric": key, "label": label, "unit": unit, "palisade": p, "synapse": s,
                     "ratio_palisade_over_synapse": ratio, "target": f"{op} {target}x"
                     if target is not None else None, "met": met})

        def fmt(v: float | None, scale: float = scale, unit: str = unit) -> str:
            return "-" if v is None else f"{v * scale:.2f} {unit}"

        lines.append(
            f"{label:34} {fmt(p):>12} {fmt(s):>12} "
            f"{'-' if ratio is None else f'{ratio:.2f}':>7}  "
            f"{(op + ' ' + str(target) + 'x') if target is not None else '(info)':>8}  "
            f"{'-' if met is None else ('met' if met else 'NOT met')}")
    return "\n".join(lines), rows


def machine_info() -> dict[str, Any]:
    import psutil

    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30),
            "platform": platform.platform(), "python": platform.python_version()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="palisade,synapse",
                   help="comma list: palisade, synapse (default both, run one after the other)")
    p.add_argument("--workers", type=int, default=1, help="Palisade worker processes (default 1)")
    p.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL",
                                                      "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL",
                                                         "redis://127.0.0.1:6379/11"))
    p.add_argument("--palisade-conn-max-age", default="0",
                   help="Palisade's database.conn_max_age for the run (default 0: with its own "
                        "default of 60 s every request thread keeps a connection open and 16 "
                        "concurrent senders exhaust PostgreSQL's max_connections=100; "
                        "'default' leaves Palisade's own default)")
    p.add_argument("--palisade-pool-max-size", default="default",
                   help="Palisade's database.pool_max_size (connections per worker process; "
                        "'default' leaves Palisade's own, 0 turns the pool off)")
    p.add_argument("--synapse-venv", default=SYNAPSE_VENV_DEFAULT)
    p.add_argument("--presence", choices=("on", "off"), default="on",
                   help="presence in both servers (default on: both servers' default)")
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rooms", type=int, default=8)
    p.add_argument("--warmup", type=int, default=5, help="untimed messages per sender first")
    p.add_argument("--latency-samples", type=int, default=200)
    p.add_argument("--latency-pause-ms", type=float, default=50)
    p.add_argument("--sync-rooms", type=int, default=200)
    p.add_argument("--sync-messages", type=int, default=3)
    p.add_argument("--sync-repeats", type=int, default=5)
    p.add_argument("--phase-timeout", type=float, default=600, help="seconds per phase")
    p.add_argument("--total-timeout", type=float, default=1800, help="seconds per server")
    p.add_argument("--idle-wait", type=float, default=60,
                   help="max seconds to wait for the server to go idle before a phase")
    p.add_argument("--quiet-wait", type=float, default=300,
                   help="max seconds to wait for other load on the machine to stop before "
                        "measuring each server (0: don't wait)")
    p.add_argument("--profile", default="", help="comma list of servers to py-spy during (a)")
    p.add_argument("--profile-phases", default="throughput",
                   help="comma list of phases to profile: throughput, initial_sync")
    p.add_argument("--profile-gil", action="store_true",
                   help="sample only threads holding the GIL (CPU in Python) instead of every "
                        "non-idle thread (which includes waiting on PostgreSQL)")
    p.add_argument("--py-spy", default=None, help="path to py-spy (for --profile)")
    p.add_argument("--no-snapshot", action="store_true",
                   help="run Palisade from the live tree instead of a copy taken at start")
    p.add_argument("--keep", action="store_true", help="keep databases and data dirs")
    p.add_argument("--output", default=None, help="JSON path (default bench/results/...)")
    args = p.parse_args()
    order = [s.strip() for s in args.servers.split(",") if s.strip()]
    if bad := [s for s in order if s not in SERVERS]:
        p.error(f"unknown server(s): {', '.join(bad)}")
    args.profile = [s.strip() for s in args.profile.split(",") if s.strip()]
    args.profile_phases = [s.strip() for s in args.profile_phases.split(",") if s.strip()]
    if args.profile:
        find_py_spy(args.py_spy)

    signal.signal(signal.SIGTERM, _on_signal)
    started = dt.datetime.now(dt.UTC)
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for kind in order:
        print(f"== {kind}", flush=True)
        server = None
        try:
            if kind == "palisade":
                server = start_palisade(args.pg_url, args.redis_url, args.workers,
                                        conn_max_age=None if args.palisade_conn_max_age
                                        == "default" else int(args.palisade_conn_max_age),
                                        snapshot=not args.no_snapshot,
                                        presence=args.presence == "on",
                                        pool_max_size=None if args.palisade_pool_max_size
                                        == "default" else int(args.palisade_pool_max_size))
            else:
                server = start_synapse(args.pg_url, args.synapse_venv,
                                       presence=args.presence == "on")
            print(f"  started {server.base_url} (pid {server.pid}, database {server.db_name}, "
                  f"{server.details.get('workers')} workers)", flush=True)
            results[kind] = measure(server, args)
        except (BenchError, TimeoutError) as e:
            msg = str(e) or f"{type(e).__name__} (a phase exceeded its time limit)"
            errors[kind] = msg
            print(f"  [{kind}] FAILED: {msg}", file=sys.stderr, flush=True)
            if server is not None:
                print(f"  server log tail ({server.log_path}):\n{server.log_tail(2000)}",
                      file=sys.stderr, flush=True)
        except (KeyboardInterrupt, Interrupted) as e:
            errors[kind] = f"interrupted ({e})"
            print(f"  [{kind}] interrupted, cleaning up", file=sys.stderr, flush=True)
            break
        finally:
            if server is not None and server.process is not None:
                server.stop(keep=args.keep, keep_dir=kind in errors)

    table, rows = ratio_table(results)
    print()
    print(f"Palisade: {args.workers} uvicorn workers, Redis {args.redis_url}, "
          f"database.conn_max_age {args.palisade_conn_max_age}, "
          f"pool_max_size {args.palisade_pool_max_size}; "
          "Synapse: single process; both on PostgreSQL "
          f"{args.pg_url.rsplit('@', 1)[-1]}; load generator: one httpx asyncio process")
    print(table)
    record = {
        "bench": "load", "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(), "settings": {k: v for k, v in vars(args).items()},
        "results": results, "comparison": rows, "errors": errors,
    }
    out = Path(args.output) if args.output else (
        RESULTS_DIR / f"load-{started:%Y%m%d-%H%M%S}.json")
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"\nresults: {out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
