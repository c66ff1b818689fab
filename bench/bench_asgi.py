"""uvicorn vs granian serving the same Palisade ASGI app (`homeserver.asgi:application`).

    .venv/bin/python bench/bench_asgi.py                   # both, 2 workers, 20 s per run
    .venv/bin/python bench/bench_asgi.py --workers 1 --duration 10 --servers granian

For each server, with the same worker count, on the same PostgreSQL database and Redis:
  * GET /_matrix/client/versions with wrk, 16 connections: requests/s, p50/p99 latency
  * PUT /_matrix/client/v3/rooms/{id}/send/m.room.message/{txn} (authenticated, unique txn ids
    from a wrk Lua script), 16 connections: requests/s, p50/p99, non-2xx count
  * server CPU per request and RSS of all server processes after the load
  * compatibility checks: /sync long-poll timeout and wake-up, client disconnect during a
    long-poll, error answers, SIGTERM with a long-poll in flight (time to exit, what the client
    saw)

wrk (Debian: `apt-get install -y wrk`) is the load generator: a separate C process, so the
Python server is what is measured. granian and psutil are bench-only dependencies:
`.venv/bin/pip install granian psutil`. Only 127.0.0.1 is contacted; each wrk run is bounded by
--duration. Results go to bench/results/asgi-*.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "load"))

try:
    import httpx
    import psutil
except ImportError as e:
    sys.exit(f"bench_asgi needs {e.name}: .venv/bin/pip install {e.name}")

import proctree  # noqa: E402
from servers import REPO_ROOT, BenchError, drop_database, free_port, start_palisade  # noqa: E402

RESULTS_DIR = REPO_ROOT / "bench" / "results"
APP = "homeserver.asgi:application"

# Printed by wrk at the end of a run: one JSON line the bench parses (latencies in µs).
WRK_DONE = r"""
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %f}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""

WRK_SEND = r"""
local tid_counter = 0
function setup(thread)
  tid_counter = tid_counter + 1
  thread:set("tid", tid_counter)
end
function init(args)
  math.randomseed(os.time() + tid * 7919)
  prefix = string.format("wrk%d-%d-", tid, math.random(1, 1000000000))
  counter = 0
end
request = function()
  counter = counter + 1
  return wrk.format("PUT", PATH .. prefix .. counter, HEADERS, BODY)
end
"""


def servers_commands(name: str, port: int, workers: int) -> list[str]:
    py = sys.executable
    if name == "uvicorn":  # the flags `palisade serve` uses (homeserver/cli.py)
        return [py, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--no-access-log", "--lifespan", "off",
                "--timeout-graceful-shutdown", "5"]
    if name == "granian":
        # asginl: ASGI without lifespan (Django's handler rejects lifespan, like uvicorn's
        # --lifespan off); HTTP/1.1 like uvicorn; no websockets (Palisade has none).
        return [py, "-m", "granian", "--interface", "asginl", "--host", "127.0.0.1", "--port",
                str(port), "--workers", str(workers), "--http", "1", "--no-ws",
                "--log-level", "warning", "--no-access-log", "--workers-kill-timeout", "5", APP]
    raise ValueError(name)


def server_version(name: str) -> str:
    r = subprocess.run([sys.executable, "-c", f"import {name}; print({name}.__version__)"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


class AsgiServer:
    def __init__(self, name: str, workers: int, env: dict[str, str], cwd: Path,
                 log_dir: Path) -> None:
        self.name, self.workers = name, workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.cmd = servers_commands(name, self.port, workers)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.cmd, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def wait_up(self, timeout: float = 120) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited ({self.proc.returncode}) at startup:\n"
                                 f"{self.log_tail()}")
            try:
                if httpx.get(self.base_url + "/_matrix/client/versions", timeout=2).is_success:
                    return time.monotonic() - start
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def terminate(self, timeout: float = 30) -> float:
        """SIGTERM the server's main process; returns seconds until the whole group is gone
        (SIGKILL after `timeout`)."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        elapsed = time.monotonic() - start
        # Anything still in the group 2 s later (orphaned workers) is a finding; kill it.
        leftovers: list[str] = []
        for _ in range(20):
            leftovers = [" ".join(p.info["cmdline"] or [])[:120]
                         for p in psutil.process_iter(["pid", "cmdline", "status"])
                         if _pgid(p.pid) == self.proc.pid and p.info["status"] != "zombie"]
            if not leftovers:
                break
            time.sleep(0.1)
        if leftovers:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.orphans = leftovers
        self._log.close()
        return elapsed


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


# ---------------------------------------------------------------- wrk runs


def run_wrk(url: str, *, connections: int, duration: float, script: str,
            threads: int = 1) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + WRK_DONE)
        path = f.name
    try:
        cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{int(duration)}s",
               "--timeout", "30s", "-s", path, url]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    finally:
        os.unlink(path)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if r.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({r.returncode}): {r.stderr[-1000:]}{r.stdout[-1000:]}")
    d = json.loads(line[len("WRKJSON "):])
    secs = d["duration_us"] / 1e6
    errors = (d["connect_errors"] + d["read_errors"] + d["write_errors"] + d["timeouts"])
    return {
        "requests": d["requests"], "seconds": round(secs, 2),
        "requests_per_s": round(d["requests"] / secs, 1),
        "p50_ms": round(d["p50_us"] / 1000, 2), "p90_ms": round(d["p90_us"] / 1000, 2),
        "p99_ms": round(d["p99_us"] / 1000, 2), "max_ms": round(d["max_us"] / 1000, 2),
        "non_2xx": d["status_errors"], "socket_errors": errors,
    }


def measured_wrk(server: AsgiServer, url: str, script: str, args: argparse.Namespace,
                 ) -> dict[str, Any]:
    procs = proctree.tree(server.proc.pid)
    c0, s0 = proctree.cpu_snapshot(procs), proctree.system_busy_cpu()
    res = run_wrk(url, connections=args.connections, duration=args.duration, script=script)
    c1, s1 = proctree.cpu_snapshot(proctree.tree(server.proc.pid)), proctree.system_busy_cpu()
    cpu = proctree.cpu_delta(c0, c1)
    res["server_cpu_s"] = round(cpu, 2)
    res["server_cpu_ms_per_request"] = round(1000 * cpu / max(1, res["requests"]), 3)
    res["machine_busy_cores"] = round((s1 - s0) / res["seconds"], 2)
    return res


def send_script(base_url: str, room_id: str, token: str) -> str:
    path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/"
    body = json.dumps({"msgtype": "m.text", "body": "the quick brown fox jumps over the dog"})
    return (f"PATH = {json.dumps(path)}\n"
            f"BODY = {json.dumps(body)}\n"
            f'HEADERS = {{["Authorization"] = {json.dumps("Bearer " + token)}, '
            f'["Content-Type"] = "application/json"}}\n' + WRK_SEND)


# ---------------------------------------------------------------- compatibility checks


def fresh_since(base: str, token: str) -> str:
    r = httpx.get(f"{base}/_matrix/client/v3/sync", params={"timeout": "0"}, timeout=120,
                  headers={"Authorization": f"Bearer {token}"})
    r.raise_for_status()
    return r.json()["next_batch"]


def compat_checks(server: AsgiServer, fx: dict[str, Any]) -> dict[str, Any]:
    """Behaviour that differs between ASGI servers far more often than speed does. Run on an
    idle server (sends still in flight after wrk stops would wake the long-polls early)."""
    base = server.base_url
    out: dict[str, Any] = {}
    recv_h = {"Authorization": f"Bearer {fx['receiver_token']}"}
    send_h = {"Authorization": f"Bearer {fx['sender_token']}"}
    room = quote(fx["room_id"], safe="")
    with httpx.Client(base_url=base, timeout=60) as c:
        r = c.get("/_matrix/client/v3/no/such/endpoint")
        out["unknown_endpoint"] = f"{r.status_code} {r.json().get('errcode')}"
        r = c.options("/_matrix/client/versions",
                      headers={"Origin": "http://example.test",
                               "Access-Control-Request-Method": "GET"})
        out["cors_preflight"] = f"{r.status_code} allow-origin=" \
                                f"{r.headers.get('access-control-allow-origin')}"
        r = c.put(f"/_matrix/client/v3/rooms/{room}/send/m.room.message/bad", headers=send_h,
                  content=b"{not json")
        out["bad_json_body"] = f"{r.status_code} {r.json().get('errcode')}"
        since = fresh_since(base, fx["receiver_token"])
        # 1. long-poll with nothing to deliver returns after its timeout
        t = time.monotonic()
        r = c.get("/_matrix/client/v3/sync", headers=recv_h,
                  params={"since": since, "timeout": "3000"})
        out["longpoll_timeout_3s_took_s"] = round(time.monotonic() - t, 2)
        since = r.json()["next_batch"]

        # 2. long-poll woken by a send (possibly from another worker, via Redis)
        def later_send() -> None:
            time.sleep(1.0)
            httpx.put(f"{base}/_matrix/client/v3/rooms/{room}/send/m.room.message/"
                      f"wake{time.time_ns()}", headers=send_h,
                      json={"msgtype": "m.text", "body": "wake"}, timeout=30)

        th = threading.Thread(target=later_send)
        t = time.monotonic()
        th.start()
        r = c.get("/_matrix/client/v3/sync", headers=recv_h,
                  params={"since": since, "timeout": "20000"})
        th.join()
        out["longpoll_woken_after_1s_send_took_s"] = round(time.monotonic() - t, 2)
        joined = r.json().get("rooms", {}).get("join", {})
        out["longpoll_woken_delivered_event"] = any(
            e.get("content", {}).get("body") == "wake"
            for rr in joined.values() for e in rr.get("timeline", {}).get("events", []))
    # 3. client gives up on a long-poll: the server must carry on serving
    try:
        httpx.get(f"{base}/_matrix/client/v3/sync", headers=recv_h,
                  params={"since": since, "timeout": "30000"}, timeout=1.0)
    except httpx.TimeoutException:
        pass
    time.sleep(0.5)
    out["serves_after_client_disconnect"] = httpx.get(
        f"{base}/_matrix/client/versions", timeout=5).status_code == 200
    return out


def shutdown_check(server: AsgiServer, fx: dict[str, Any]) -> dict[str, Any]:
    """SIGTERM while a /sync long-poll (30 s) is in flight: how long until the server is gone,
    and what the waiting client gets."""
    recv_h = {"Authorization": f"Bearer {fx['receiver_token']}"}
    outcome: dict[str, Any] = {}
    since = fresh_since(server.base_url, fx["receiver_token"])

    def longpoll() -> None:
        t = time.monotonic()
        try:
            r = httpx.get(f"{server.base_url}/_matrix/client/v3/sync", headers=recv_h,
                          params={"since": since, "timeout": "30000"}, timeout=60)
            outcome["client_saw"] = f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            outcome["client_saw"] = type(e).__name__
        outcome["client_waited_s"] = round(time.monotonic() - t, 2)

    th = threading.Thread(target=longpoll)
    th.start()
    time.sleep(1.0)
    exit_s = server.terminate(timeout=40)
    th.join(timeout=70)
    return {"sigterm_to_exit_s": round(exit_s, 2), "exit_code": server.proc.returncode,
            "orphaned_processes": server.orphans, **outcome}


# ---------------------------------------------------------------- main


def prepare_fixture(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Initialise a Palisade database (via `palisade serve`, which migrates and creates the
    signing key), register a sender and a receiver, create a room; then stop it, keeping the
    database and config for the servers under test."""
    import asyncio

    from workload import Matrix, register_many

    pal = start_palisade(args.pg_url, args.redis_url, 1, conn_max_age=args.conn_max_age,
                         snapshot=not args.no_snapshot)

    async def setup() -> dict[str, Any]:
        mx = Matrix(pal.base_url, pal.shared_secret)
        try:
            sender, receiver = await register_many(mx, "asgi", 2)
            room_id = await mx.create_room(sender, preset="public_chat", name="asgi bench")
            await mx.join(receiver, room_id)
            body, _ = await mx.sync(receiver)
            return {"sender_token": sender.access_token, "receiver_token": receiver.access_token,
                    "room_id": room_id, "since": body["next_batch"]}
        finally:
            await mx.aclose()

    try:
        fx = asyncio.run(setup())
    except BaseException:
        pal.stop()
        raise
    assert pal.process is not None
    os.killpg(pal.process.pid, signal.SIGTERM)
    pal.process.wait(timeout=30)
    return pal, fx


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="uvicorn,granian")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=20, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    p.add_argument("--conn-max-age", type=int, default=0,
                   help="database.conn_max_age (0 as in bench/load; see docs/benchmarks.md)")
    p.add_argument("--quiet-wait", type=float, default=120,
                   help="max seconds to wait for other load on the machine before each server")
    p.add_argument("--no-snapshot", action="store_true")
    p.add_argument("--output", default=None)
    args = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_asgi needs wrk: apt-get install -y wrk")
    names = [s.strip() for s in args.servers.split(",") if s.strip()]
    for n in names:
        if n not in ("uvicorn", "granian"):
            p.error(f"unknown server {n}")
        if subprocess.run([sys.executable, "-c", f"import {n}"]).returncode != 0:
            sys.exit(f"{n} is not installed: .venv/bin/pip install {n}")

    started = dt.datetime.now(dt.UTC)
    print("preparing the database (palisade serve, migrate, users, room) ...", flush=True)
    pal, fx = prepare_fixture(args)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE")}
    code_dir = Path(pal.details["source"]["path"])
    env.update(PALISADE_CONFIG=str(pal.workdir / "palisade.toml"),
               DJANGO_SETTINGS_MODULE="homeserver.settings",
               PALISADE_LISTENER_RESOURCES="client,federation", PALISADE_DATA_ROOT=str(pal.workdir),
               PYTHONPATH=str(code_dir), PYTHONUNBUFFERED="1")
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    try:
        for name in names:
            print(f"== {name} ({args.workers} workers)", flush=True)
            if args.quiet_wait > 0:
                _, busy = proctree.wait_machine_quiet(args.quiet_wait)
                if busy >= 0.3:
                    print(f"  warning: other processes keep {busy:.2f} cores busy", flush=True)
            srv = AsgiServer(name, args.workers, env, code_dir, pal.workdir)
            try:
                res: dict[str, Any] = {"version": server_version(name),
                                       "command": " ".join(srv.cmd[1:])}
                res["startup_s"] = round(srv.wait_up(), 2)
                time.sleep(1)
                res["rss_mib_idle"] = round(
                    proctree.memory(proctree.tree(srv.proc.pid))["rss_bytes"] / 2**20, 1)
                versions_url = srv.base_url + "/_matrix/client/versions"
                run_wrk(versions_url, connections=args.connections, duration=3, script="")
                res["versions"] = measured_wrk(srv, versions_url, "", args)
                print(f"  GET /versions: {res['versions']['requests_per_s']} req/s, p50 "
                      f"{res['versions']['p50_ms']} ms, p99 {res['versions']['p99_ms']} ms",
                      flush=True)
                proctree.wait_idle(srv.proc.pid, max_wait=20)
                res["send"] = measured_wrk(srv, srv.base_url,
                                           send_script(srv.base_url, fx["room_id"],
                                                       fx["sender_token"]), args)
                print(f"  PUT send: {res['send']['requests_per_s']} req/s, p50 "
                      f"{res['send']['p50_ms']} ms, p99 {res['send']['p99_ms']} ms, non-2xx "
                      f"{res['send']['non_2xx']}, socket errors {res['send']['socket_errors']}",
                      flush=True)
                mem = proctree.memory(proctree.tree(srv.proc.pid))
                res["rss_mib_after_load"] = round(mem["rss_bytes"] / 2**20, 1)
                res["pss_mib_after_load"] = round(mem["pss_bytes"] / 2**20, 1)
                res["processes"] = mem["processes"]
                print(f"  RSS after load {res['rss_mib_after_load']} MiB "
                      f"({mem['processes']} processes)", flush=True)
                proctree.wait_idle(srv.proc.pid, max_wait=60)
                res["compat"] = compat_checks(srv, fx)
                print(f"  compat: {res['compat']}", flush=True)
                res["shutdown"] = shutdown_check(srv, fx)
                print(f"  shutdown: {res['shutdown']}", flush=True)
                log = srv.log_tail(20000)
                res["log_errors"] = [ln for ln in log.splitlines()
                                     if "Traceback" in ln or "ERROR" in ln][:10]
                results[name] = res
            except (BenchError, subprocess.TimeoutExpired, httpx.HTTPError) as e:
                errors[name] = str(e)
                print(f"  FAILED: {e}", file=sys.stderr, flush=True)
            finally:
                if srv.proc.poll() is None:
                    srv.terminate(timeout=20)
    finally:
        try:
            drop_database(pal.pg_url, pal.db_name)
        except Exception as e:
            print(f"could not drop {pal.db_name}: {e}", file=sys.stderr)
        if not errors:
            shutil.rmtree(pal.workdir, ignore_errors=True)
        else:
            print(f"kept {pal.workdir} (server logs)", file=sys.stderr)

    print()
    hdr = f"{'':30}" + "".join(f"{n:>14}" for n in results)
    print(hdr)
    rows = [("GET /versions req/s", "versions", "requests_per_s"),
            ("GET /versions p50 ms", "versions", "p50_ms"),
            ("GET /versions p99 ms", "versions", "p99_ms"),
            ("GET /versions CPU ms/req", "versions", "server_cpu_ms_per_request"),
            ("PUT send req/s", "send", "requests_per_s"),
            ("PUT send p50 ms", "send", "p50_ms"),
            ("PUT send p99 ms", "send", "p99_ms"),
            ("PUT send CPU ms/req", "send", "server_cpu_ms_per_request"),
            ("PUT send non-2xx", "send", "non_2xx")]
    for label, sect, key in rows:
        print(f"{label:30}" + "".join(f"{results[n][sect][key]:>14}" for n in results))
    for label, key in (("RSS idle MiB", "rss_mib_idle"), ("RSS after load MiB",
                                                          "rss_mib_after_load")):
        print(f"{label:30}" + "".join(f"{results[n][key]:>14}" for n in results))
    print(f"{'SIGTERM -> exit s (long-poll)':30}" +
          "".join(f"{results[n]['shutdown']['sigterm_to_exit_s']:>14}" for n in results))
    record = {"bench": "asgi", "started": started.isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count()}, "settings": vars(args),
              "source": pal.details.get("source"), "results": results, "errors": errors}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = Path(args.output) if args.output else (
        RESULTS_DIR / f"asgi-{started:%Y%m%d-%H%M%S}.json")
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"\nresults: {out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
