"""Start and stop the two servers under test, each on its own fresh PostgreSQL database.

Both run on 127.0.0.1 only, in their own process group (so a stop takes every worker with it),
with a temporary data directory and a database created here and dropped on stop.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
STARTUP_TIMEOUT_S = 240
SYNAPSE_VENV_DEFAULT = "/tmp/palisade-bench-synapse-venv"


class BenchError(RuntimeError):
    """A failure the operator can act on; run.py prints it without a traceback."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- PostgreSQL


def _admin_url(pg_url: str) -> str:
    return urlunsplit(urlsplit(pg_url)._replace(path="/postgres"))


def create_database(pg_url: str, prefix: str, *, c_collation: bool) -> tuple[str, str]:
    """A fresh database on the server `pg_url` names: (its name, its URL)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    sql = f'CREATE DATABASE "{name}"'
    if c_collation:  # Synapse refuses databases whose collation is not C
        sql += " ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    try:
        with psycopg.connect(_admin_url(pg_url), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)
    except psycopg.OperationalError as e:
        raise BenchError(f"cannot reach PostgreSQL at {pg_url}: {e}") from None
    return name, urlunsplit(urlsplit(pg_url)._replace(path=f"/{name}"))


def drop_database(pg_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(pg_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PG_STAT_COLUMNS = ("sessions", "xact_commit", "xact_rollback", "active_time",
                   "tup_returned", "tup_fetched", "tup_inserted", "tup_updated", "blks_hit")


def database_stats(pg_url: str, name: str) -> dict[str, float]:
    """Cumulative pg_stat_database counters for one database (PostgreSQL 14+: sessions = new
    connections, active_time = ms spent executing statements). The server flushes them at most
    once a second, so read them a little after the work."""
    import psycopg

    with psycopg.connect(_admin_url(pg_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(f"SELECT {', '.join(PG_STAT_COLUMNS)} FROM pg_stat_database "
                           "WHERE datname = %s", (name,)).fetchone()
    return {k: float(v or 0) for k, v in zip(PG_STAT_COLUMNS, row or (), strict=False)}


class ConnectionSampler:
    """Samples one database's connections in pg_stat_activity every `interval` s in a background
    thread, between start() and stop(): how many are open, and what the active ones are doing
    (wait event + statement start) — where transactions queue. stop() returns (max, mean)."""

    def __init__(self, pg_url: str, name: str, interval: float = 0.25) -> None:
        import threading

        self.pg_url, self.name, self.interval = pg_url, name, interval
        self.samples: list[int] = []
        self.waits: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(_admin_url(self.pg_url), autocommit=True,
                                 connect_timeout=10) as conn:
                while not self._stop.wait(self.interval):
                    rows = conn.execute(
                        "SELECT state, wait_event_type, wait_event, left(query, 90) "
                        "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        (self.name,)).fetchall()
                    self.samples.append(len(rows))
                    for state, wtype, wevent, query in rows:
                        if state != "active":
                            continue
                        query = re.sub(r"'[^']*'?", "?", " ".join(query.split()))
                        what = f"{wtype or 'CPU'}:{wevent or '-'} | {query}"
                        self.waits[what] = self.waits.get(what, 0) + 1
        except Exception:  # a sampling failure only loses the statistic
            pass

    def start(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def top_waits(self, n: int = 8) -> list[tuple[str, float]]:
        """The commonest (wait, statement) pairs: mean number of backends in that state."""
        k = max(1, len(self.samples))
        return [(w, round(c / k, 2)) for w, c in
                sorted(self.waits.items(), key=lambda kv: -kv[1])[:n]]

    def stop(self) -> tuple[int, float]:
        self._stop.set()
        self._thread.join(timeout=10)
        if not self.samples:
            return 0, 0.0
        return max(self.samples), sum(self.samples) / len(self.samples)


# ---------------------------------------------------------------- common process handling


@dataclass
class Server:
    kind: str  # "palisade" | "synapse"
    base_url: str
    server_name: str
    shared_secret: str
    workdir: Path
    log_path: Path
    pg_url: str
    db_name: str
    process: subprocess.Popen[bytes] | None = None
    workers: int = 1
    details: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def wait_until_up(self, path: str = "/_matrix/client/versions") -> float:
        start = time.monotonic()
        deadline = start + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BenchError(f"{self.kind} exited with code {self.process.returncode} during "
                                 f"startup; log {self.log_path}:\n{self.log_tail()}")
            try:
                if httpx.get(self.base_url + path, timeout=2).is_success:
                    return time.monotonic() - start
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise BenchError(f"{self.kind} did not answer {path} within {STARTUP_TIMEOUT_S}s; "
                         f"log {self.log_path}:\n{self.log_tail()}")

    def stop(self, *, keep: bool = False, keep_dir: bool = False) -> None:
        """SIGTERM the process group, SIGKILL it after 30 s; then drop the database and remove
        the data directory (keep: both stay; keep_dir: the directory with the logs stays)."""
        p = self.process
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"  {self.kind}: no exit 30 s after SIGTERM, sending SIGKILL", flush=True)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)
        # Workers that outlived their parent (should not happen) still hold the group id.
        if p is not None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if keep:
            print(f"  {self.kind}: kept database {self.db_name} and {self.workdir}", flush=True)
            return
        try:
            drop_database(self.pg_url, self.db_name)
        except Exception as e:  # report, keep cleaning up
            print(f"  {self.kind}: could not drop database {self.db_name}: {e}", flush=True)
        if keep_dir:
            print(f"  {self.kind}: kept {self.workdir} (logs) for inspection", flush=True)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _toml(v: object) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(i) for i in v) + "]"
    raise TypeError(type(v))


# ---------------------------------------------------------------- Palisade


SNAPSHOT_IGNORE = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.pyc", "data",
                                         "results", "node_modules", "*.sqlite3*", "*.egg-info")


def snapshot_source(dest_parent: Path) -> dict[str, str]:
    """Copy the working tree (code only) so the code under test cannot change mid-run while
    other people edit /work/main. Returns {path, git_head, git_dirty_files}."""
    dest = dest_parent / "src"
    shutil.copytree(REPO_ROOT, dest, ignore=SNAPSHOT_IGNORE)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           cwd=REPO_ROOT, capture_output=True, text=True).stdout.splitlines()
    return {"path": str(dest), "git_head": head or "(no commits)",
            "git_modified_files": str(len(dirty))}


def start_palisade(pg_url: str, redis_url: str, workers: int,
                   conn_max_age: int | None = None, snapshot: bool = True,
                   presence: bool = True, pool_max_size: int | None = None) -> Server:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="palisade-bench-"))
    source = snapshot_source(workdir) if snapshot else {"path": str(REPO_ROOT)}
    code_dir = Path(source["path"])
    db_name, db_url = create_database(pg_url, "palisade_perf_load_p", c_collation=False)
    secret = secrets.token_urlsafe(24)
    server = Server(
        kind="palisade", base_url=f"http://127.0.0.1:{port}", server_name=f"127.0.0.1:{port}",
        shared_secret=secret, workdir=workdir, log_path=workdir / "server.log", pg_url=pg_url,
        db_name=db_name, workers=workers,
    )
    top = {
        "server_name": server.server_name,
        "public_baseurl": server.base_url + "/",
        "signing_key_path": str(workdir / "signing.key"),
        "media_path": str(workdir / "media"),
        "registration_shared_secret": secret,
        "secret_key": secrets.token_urlsafe(50),
        "workers": workers,
    }
    lines = [f"{k} = {_toml(v)}" for k, v in top.items()]
    lines += ["", "[database]", f"url = {_toml(db_url)}"]
    if conn_max_age is not None:
        lines.append(f"conn_max_age = {conn_max_age}")
    if pool_max_size is not None:
        lines.append(f"pool_max_size = {pool_max_size}")
    lines += [
              "", "[redis]", f"url = {_toml(redis_url)}",
              "", "[rate_limits]", "enabled = false",
              "", "[audit]",
              f"signing_key_path = {_toml(str(workdir / 'audit_signing.key'))}",
              f"sink_path = {_toml(str(workdir / 'audit_checkpoints.jsonl'))}",
              *(["", "[presence]", "enabled = false"] if not presence else []),
              "", "[[listeners]]", 'bind = "127.0.0.1"', f"port = {port}",
              'resources = ["client", "federation"]', ""]
    config_path = workdir / "palisade.toml"
    config_path.write_text("\n".join(lines))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE")}
    env.update(PYTHONUNBUFFERED="1", PALISADE_DATA_ROOT=str(workdir),
               PYTHONPATH=str(code_dir))
    cmd = [sys.executable, "-m", "homeserver.cli", "serve", "--config", str(config_path),
           "--workers", str(workers)]
    server.details = {"command": " ".join(cmd), "redis": redis_url, "workers": workers,
                      "asgi_server": "uvicorn (palisade serve)",
                      "conn_max_age": "default" if conn_max_age is None else conn_max_age,
                      "pool_max_size": "default" if pool_max_size is None else pool_max_size,
                      "source": source, "presence": presence}
    with server.log_path.open("wb") as log:
        server.process = subprocess.Popen(cmd, cwd=code_dir, env=env, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
    try:
        server.details["startup_s"] = round(server.wait_until_up(), 2)
    except BaseException:
        server.stop()
        raise
    return server


# ---------------------------------------------------------------- Synapse


def ensure_synapse_venv(venv: str) -> Path:
    """The Synapse virtualenv (created with `pip install 'matrix-synapse[postgres]'` if absent)."""
    py = Path(venv) / "bin" / "python"
    probe = [str(py), "-c", "import synapse, psycopg2, yaml; print(synapse.__version__)"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    print(f"creating the Synapse virtualenv {venv} (pip install 'matrix-synapse[postgres]', "
          "a few minutes) ...", flush=True)
    if not py.exists():
        r = subprocess.run(["python3", "-m", "venv", venv])
        if r.returncode != 0:
            raise BenchError(f"python3 -m venv {venv} failed")
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "matrix-synapse[postgres]"],
                       timeout=1800)
    if r.returncode != 0 or subprocess.run(probe, capture_output=True).returncode != 0:
        raise BenchError(f"installing matrix-synapse[postgres] into {venv} failed")
    return py


def synapse_version(py: Path) -> str:
    r = subprocess.run([str(py), "-c", "import synapse; print(synapse.__version__)"],
                       capture_output=True, text=True)
    return r.stdout.strip()


def start_synapse(pg_url: str, venv: str, *, presence: bool = True) -> Server:
    py = ensure_synapse_venv(venv)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="synapse-bench-"))
    db_name, _ = create_database(pg_url, "palisade_perf_load_s", c_collation=True)
    secret = secrets.token_urlsafe(24)
    server = Server(
        kind="synapse", base_url=f"http://127.0.0.1:{port}", server_name=f"127.0.0.1:{port}",
        shared_secret=secret, workdir=workdir, log_path=workdir / "stdout.log", pg_url=pg_url,
        db_name=db_name, workers=1,
    )
    pg = urlsplit(pg_url)
    conf_cmd = [str(py), str(BENCH_DIR / "synapse_conf.py"), "--dir", str(workdir),
                "--port", str(port), "--db", db_name, f"--secret={secret}",
                "--pg-host", pg.hostname or "127.0.0.1", "--pg-port", str(pg.port or 5432),
                "--pg-user", pg.username or "postgres"]
    if pg.password:
        conf_cmd.append(f"--pg-password={pg.password}")
    if presence:
        conf_cmd.append("--presence")
    try:
        r = subprocess.run(conf_cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise BenchError(f"generating the Synapse config failed:\n{r.stderr[-3000:]}")
        cfg_path = r.stdout.strip().splitlines()[-1]
        cmd = [str(py), "-m", "synapse.app.homeserver", "-c", cfg_path]
        server.details = {"command": " ".join(cmd), "version": synapse_version(py),
                          "presence": presence, "workers": "single process"}
        with server.log_path.open("wb") as log:
            server.process = subprocess.Popen(cmd, cwd=workdir, stdout=log,
                                              stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, start_new_session=True)
        server.details["startup_s"] = round(server.wait_until_up("/health"), 2)
        server.wait_until_up()
    except BaseException:
        server.stop()
        raise
    return server
