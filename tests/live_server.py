"""Start the real server process for live tests: `palisade serve --workers 1` on a free loopback
port, with its own database (a SQLite file under tmp_path, or, when PALISADE_DATABASE_URL names
PostgreSQL, a freshly created database on that server that is dropped on stop).

    server = start_server(tmp_path, registration={"enabled": True})
    try:
        user = server.register_user("alice", "a long password")   # shared-secret registration
        httpx.get(server.base_url + "/_matrix/client/versions")
    finally:
        server.stop()

`config_overrides` are merged into the generated TOML (tables merge key by key).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(config: dict[str, Any]) -> str:
    """Top-level keys, then [tables] and [[arrays of tables]] one level deep (all the
    configuration has)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in config.items()
             if not isinstance(v, dict) and not _is_table_array(v)]
    for k, v in config.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
        elif _is_table_array(v):
            for item in v:
                lines += ["", f"[[{k}]]"] + [f"{kk} = {_toml_value(vv)}"
                                             for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list | tuple) and bool(v) and all(isinstance(i, dict) for i in v)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in overrides.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _create_postgres_database(url: str) -> tuple[str, str]:
    """A fresh database on the server `url` points at: (its URL, its name)."""
    import psycopg

    parts = urlsplit(url)
    name = f"palisade_live_{uuid.uuid4().hex[:12]}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), admin_url


def _drop_postgres_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _server_command(config_path: Path) -> list[str]:
    script = Path(sys.executable).parent / "palisade"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "homeserver.cli"]
    return [*base, "serve", "--config", str(config_path), "--workers", "1"]


@dataclass
class LiveServer:
    base_url: str
    server_name: str
    shared_secret: str
    config_path: Path
    database_url: str
    log_path: Path
    process: subprocess.Popen[bytes]
    _drop: tuple[str, str] | None = field(default=None, repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def register_user(self, localpart: str, password: str, *, admin: bool = False) -> dict:
        """Shared-secret registration; returns {user_id, access_token, device_id, home_server}."""
        url = self.base_url + "/_synapse/admin/v1/register"
        nonce = httpx.get(url, timeout=10).raise_for_status().json()["nonce"]
        msg = b"\x00".join([nonce.encode(), localpart.encode(), password.encode(),
                            b"admin" if admin else b"notadmin"])
        mac = hmac.new(self.shared_secret.encode(), msg, hashlib.sha1).hexdigest()
        resp = httpx.post(url, json={"nonce": nonce, "username": localpart, "password": password,
                                     "admin": admin, "mac": mac}, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._drop is not None:
            admin_url, name = self._drop
            self._drop = None
            _drop_postgres_database(admin_url, name)


def start_server(tmp_path: Path, **config_overrides: Any) -> LiveServer:
    port = free_port()
    shared_secret = secrets.token_urlsafe(24)
    env_db = os.environ.get("PALISADE_DATABASE_URL", "")
    drop = None
    if env_db.startswith(("postgres://", "postgresql://")):
        database_url, admin_url = _create_postgres_database(env_db)
        drop = (admin_url, urlsplit(database_url).path.lstrip("/"))
    else:
        database_url = f"sqlite:///{tmp_path / 'palisade.sqlite3'}"
    config = _merge({
        "server_name": f"127.0.0.1:{port}",
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "signing_key_path": str(tmp_path / "signing.key"),
        "media_path": str(tmp_path / "media"),
        "registration_shared_secret": shared_secret,
        "secret_key": secrets.token_urlsafe(50),
        "database": {"url": database_url},
        "listeners": [{"bind": "127.0.0.1", "port": port,
                       "resources": ["client", "federation"]}],
    }, config_overrides)
    config_path = tmp_path / "palisade.toml"
    config_path.write_text(to_toml(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE_CONFIG")}
    env["PALISADE_DATABASE_URL"] = config["database"]["url"]
    env["PYTHONUNBUFFERED"] = "1"
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _server_command(config_path), cwd=REPO_ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = LiveServer(
        base_url=config["public_baseurl"].rstrip("/"), server_name=config["server_name"],
        shared_secret=config["registration_shared_secret"], config_path=config_path,
        database_url=config["database"]["url"], log_path=log_path, process=process, _drop=drop,
    )
    try:
        _wait_until_up(server)
    except BaseException:
        server.stop()
        raise
    return server


def _is_ours(server: LiveServer) -> bool:
    """The answering server publishes OUR signing key (another test's server may briefly hold
    a port freed by free_port())."""
    key_file = server.config_path.parent / "signing.key"
    if not key_file.exists():
        return False
    version = key_file.read_text().split()[1]
    try:
        doc = httpx.get(server.base_url + "/_matrix/key/v2/server", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return True  # no federation resource on this listener: nothing to compare
    return f"ed25519:{version}" in doc.get("verify_keys", {"ed25519:" + version: 1})


def _wait_until_up(server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"palisade serve exited with {server.process.returncode}:\n"
                               f"{server.log()[-4000:]}")
        try:
            if (httpx.get(server.base_url + "/_matrix/client/versions", timeout=2).is_success
                    and _is_ours(server)):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"palisade serve did not answer within {STARTUP_TIMEOUT_S}s:\n"
                       f"{server.log()[-4000:]}")
