"""`palisade serve` as a newcomer runs it: first start creates config, key and database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live_server import REPO_ROOT, free_port

pytestmark = pytest.mark.live


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


def _versions_once_up(proc: subprocess.Popen[bytes], port: int) -> httpx.Response:
    """GET /versions as soon as `palisade serve` answers (it must not exit meanwhile)."""
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/_matrix/client/versions", timeout=1)
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_first_run_creates_config_key_and_database_and_serves(tmp_path: Path):
    port = free_port()
    env = _env(PALISADE__LISTENERS=f'[{{bind = "127.0.0.1", port = {port}}}]')
    proc = subprocess.Popen([sys.executable, "-m", "homeserver.cli", "serve"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        r = _versions_once_up(proc, port)
        assert "v1.11" in r.json()["versions"]
        config = (tmp_path / "palisade.toml").read_text()
        assert 'registration_shared_secret = "' in config and "CHANGE" not in config
        assert (tmp_path / "data" / "signing.key").read_text().startswith("ed25519 ")
        assert (tmp_path / "data" / "palisade.sqlite3").stat().st_size > 0
        key = httpx.get(f"http://127.0.0.1:{port}/_matrix/key/v2/server").json()
        version = (tmp_path / "data" / "signing.key").read_text().split()[1]
        assert list(key["verify_keys"]) == [f"ed25519:{version}"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_bad_config_exits_with_a_message_not_a_traceback(tmp_path: Path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[database]\nurl = "mysql://nope"\n')
    out = subprocess.run([sys.executable, "-m", "homeserver.cli", "serve", "--config", str(cfg)],
                         cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "database.url: expected sqlite:///" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_named_config_is_refused(tmp_path: Path):
    out = subprocess.run([sys.executable, "-m", "homeserver.cli", "serve", "--config",
                          str(tmp_path / "nope.toml")], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "does not exist" in out.stderr


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.mark.skipif(not os.environ.get("PALISADE_REDIS_URL"), reason="needs Redis (production mode)")
def test_with_redis_and_one_listener_serve_becomes_the_server_process(tmp_path: Path):
    """Production mode (Celery does the background work) with one listener: `palisade serve`
    exec's uvicorn, so one process serves and stops on SIGTERM (no waiting copy of Django)."""
    port = free_port()
    env = _env(PALISADE__LISTENERS=f'[{{bind = "127.0.0.1", port = {port}}}]',
               PALISADE_REDIS_URL=os.environ["PALISADE_REDIS_URL"])
    proc = subprocess.Popen([sys.executable, "-m", "homeserver.cli", "serve"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        r = _versions_once_up(proc, port)
        assert r.status_code == 200
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"uvicorn" in cmdline  # the started process is now the server itself
        assert _children(proc.pid) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then ends by the signal it caught (as systemd expects)
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
