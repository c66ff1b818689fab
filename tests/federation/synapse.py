"""A real Synapse homeserver on loopback, started by the test suite, for interop tests.

Synapse runs from its own virtualenv (pinned in tests/federation/synapse-requirements.txt;
./scripts/test and .ci/run install it into .venv-synapse/). `PALISADE_SYNAPSE_PYTHON` names
another interpreter that has Synapse installed.

    server = start_synapse(tmp_path)
    try:
        alice = server.register_user("alice", "a long password")
        client = server.client(alice)
        room = client.post("/_matrix/client/v3/createRoom", {})["room_id"]
    finally:
        server.stop()

Or, in a test module: `from tests.federation.synapse import synapse_fixture  # noqa: F401` and
take the module-scoped `synapse` fixture (one Synapse per module: starting one costs seconds).

What the generated configuration sets, and why:
- server_name `127.0.0.1:<fed_port>`: an IP literal with an explicit port, so no .well-known,
  SRV or DNS lookup happens (spec: server-server API "Resolving server names", step 1).
- The federation + key APIs over TLS on that port (self-signed certificate), the client and
  admin APIs over plain HTTP on another port.
- SQLite: a fresh Synapse schema is set up in seconds, with no database to create or drop.
  (Synapse warns that SQLite is for testing only; that is what this is.)
- federation_verify_certificates false (peers are self-signed), the *_blacklist spellings
  emptied (Synapse 1.163 reads only those; the defaults refuse 127.0.0.0/8), and no trusted key
  servers, so keys are fetched from the origin itself and nothing leaves the machine.
- Rate limits raised far above anything a test does, and federation retry back-off cut to
  seconds, so a peer that was down a moment ago is retried quickly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import nacl.signing
import pytest

from tests.federation.tls import self_signed
from tests.live_server import REPO_ROOT, free_port

REQUIREMENTS = Path(__file__).with_name("synapse-requirements.txt")


def pinned_synapse_version() -> str:
    """The version synapse-requirements.txt pins (matrix-synapse[...]==X.Y.Z)."""
    for line in REQUIREMENTS.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep and name.split("[")[0].strip().lower() == "matrix-synapse":
            return version.strip()
    raise AssertionError(f"{REQUIREMENTS} pins no matrix-synapse version")


STARTUP_TIMEOUT_S = 90
HIGH = {"per_second": 10000, "burst_count": 100000}


def synapse_python() -> Path | None:
    """The interpreter that runs Synapse: $PALISADE_SYNAPSE_PYTHON, else .venv-synapse's."""
    configured = os.environ.get("PALISADE_SYNAPSE_PYTHON", "")
    candidate = Path(configured) if configured else REPO_ROOT / ".venv-synapse" / "bin" / "python"
    return candidate if candidate.exists() else None


def require_synapse_python() -> Path:
    """The Synapse interpreter, or skip (locally) / fail (CI=true: CI must run these tests)."""
    python = synapse_python()
    if python is not None:
        return python
    message = ("Synapse is not installed: run ./scripts/test once (it installs "
               "tests/federation/synapse-requirements.txt into .venv-synapse/) or set "
               "PALISADE_SYNAPSE_PYTHON to a python that has matrix-synapse installed")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _unpadded_b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


@dataclass
class MatrixUser:
    user_id: str
    access_token: str
    device_id: str = ""


@dataclass
class ClientAPI:
    """A minimal authenticated client-server API session (plain HTTP, JSON in and out)."""

    base_url: str
    user: MatrixUser
    timeout: float = 30.0

    @property
    def user_id(self) -> str:
        return self.user.user_id

    def request(self, method: str, path: str, body: Any = None, *, params: Any = None,
                expect: int | None = 200, timeout: float | None = None) -> Any:
        """`path` starts with /_matrix/...; raises AssertionError (with the body) on any status
        other than `expect` (None: return the httpx.Response instead of its JSON)."""
        resp = httpx.request(method, self.base_url + path, json=body, params=params,
                             headers={"Authorization": f"Bearer {self.user.access_token}"},
                             timeout=timeout or self.timeout)
        if expect is None:
            return resp
        assert resp.status_code == expect, f"{method} {path} -> {resp.status_code} {resp.text}"
        return resp.json()

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, {} if body is None else body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, {} if body is None else body, **kw)


def shared_secret_register(base_url: str, secret: str, localpart: str, password: str, *,
                           admin: bool = False) -> MatrixUser:
    """Synapse's shared-secret registration (/_synapse/admin/v1/register): both Synapse and
    Palisade serve it."""
    url = base_url + "/_synapse/admin/v1/register"
    nonce = httpx.get(url, timeout=30).raise_for_status().json()["nonce"]
    msg = b"\x00".join([nonce.encode(), localpart.encode(), password.encode(),
                        b"admin" if admin else b"notadmin"])
    mac = hmac.new(secret.encode(), msg, hashlib.sha1).hexdigest()
    resp = httpx.post(url, json={"nonce": nonce, "username": localpart, "password": password,
                                 "admin": admin, "mac": mac}, timeout=60)
    assert resp.status_code == 200, f"register {localpart}: {resp.status_code} {resp.text}"
    body = resp.json()
    return MatrixUser(body["user_id"], body["access_token"], body.get("device_id", ""))


@dataclass
class SynapseServer:
    server_name: str          # 127.0.0.1:<fed_port>
    base_url: str             # http://127.0.0.1:<client_port> (client + admin API)
    fed_url: str              # https://127.0.0.1:<fed_port> (federation + key API, TLS)
    shared_secret: str
    directory: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def register_user(self, localpart: str, password: str, *, admin: bool = False) -> dict:
        """{user_id, access_token, device_id} of a new user (shared-secret registration)."""
        user = shared_secret_register(self.base_url, self.shared_secret, localpart, password,
                                      admin=admin)
        return {"user_id": user.user_id, "access_token": user.access_token,
                "device_id": user.device_id}

    def client(self, user: dict | MatrixUser) -> ClientAPI:
        if isinstance(user, dict):
            user = MatrixUser(user["user_id"], user["access_token"], user.get("device_id", ""))
        return ClientAPI(self.base_url, user)

    def federation_get(self, path: str) -> httpx.Response:
        """An unauthenticated GET on the federation listener (key API, version)."""
        return httpx.get(self.fed_url + path, verify=False, timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def synapse_config(directory: Path, *, fed_port: int, client_port: int, shared_secret: str,
                   cert: Path, key: Path) -> dict[str, Any]:
    return {
        "server_name": f"127.0.0.1:{fed_port}",
        "public_baseurl": f"http://127.0.0.1:{client_port}/",
        "pid_file": str(directory / "homeserver.pid"),
        "report_stats": False,
        "enable_metrics": False,
        "listeners": [
            {"port": fed_port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True,
             "x_forwarded": False,
             "resources": [{"names": ["federation", "keys", "openid"], "compress": False}]},
            {"port": client_port, "bind_addresses": ["127.0.0.1"], "type": "http",
             "tls": False, "x_forwarded": False,
             "resources": [{"names": ["client"], "compress": False}]},
        ],
        "tls_certificate_path": str(cert),
        "tls_private_key_path": str(key),
        "database": {"name": "sqlite3", "args": {"database": str(directory / "homeserver.db")}},
        "media_store_path": str(directory / "media_store"),
        "signing_key_path": str(directory / "signing.key"),
        "registration_shared_secret": shared_secret,
        "enable_registration": False,
        "macaroon_secret_key": secrets.token_hex(32),
        "form_secret": secrets.token_hex(32),
        # Loopback federation: self-signed peers, loopback addresses, keys from the origin.
        "federation_verify_certificates": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "ip_range_blacklist": [],
        "federation_ip_range_blacklist": [],
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        "federation": {"destination_min_retry_interval": "2s",
                       "destination_max_retry_interval": "10s",
                       "max_long_retry_delay": "5s"},
        "rc_message": HIGH,
        "rc_registration": HIGH,
        "rc_login": {"address": HIGH, "account": HIGH, "failed_attempts": HIGH},
        "rc_joins": {"local": HIGH, "remote": HIGH},
        "rc_joins_per_room": HIGH,
        "rc_invites": {"per_room": HIGH, "per_user": HIGH, "per_issuer": HIGH},
        "rc_room_creation": HIGH,
        "rc_admin_redaction": HIGH,
        "rc_key_requests": HIGH,
        "rc_profile": HIGH,
        "rc_federation": {"window_size": 1000, "sleep_limit": 100000, "sleep_delay": 1,
                          "reject_limit": 1000000, "concurrent": 1000},
        "federation_rr_transactions_per_room_per_second": 1000,
    }


def start_synapse(directory: Path, *, extra_config: dict[str, Any] | None = None) -> SynapseServer:
    """Start Synapse with its data under `directory`; returns once both listeners answer.
    `extra_config` keys replace the generated ones (None removes a key), e.g.
    {"federation_domain_whitelist": []} for a Synapse that federates with nobody."""
    python = require_synapse_python()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "media_store").mkdir(exist_ok=True)
    cert, key = self_signed(directory)
    # Synapse's signing key file: "ed25519 <version> <unpadded base64 seed>", written here
    # instead of running `--generate-keys` (a whole extra Synapse start-up).
    seed = bytes(nacl.signing.SigningKey.generate())
    (directory / "signing.key").write_text(f"ed25519 a_{secrets.token_hex(2)} "
                                           f"{_unpadded_b64(seed)}\n")
    # Another process may take a port between free_port() and Synapse binding it (many test
    # processes share this machine): then start again on other ports, with a fresh database.
    for attempt in range(3):
        server = _launch(python, directory, cert, key, extra_config)
        try:
            _wait_until_up(server)
            return server
        except BaseException:
            server.stop()
            if attempt == 2 or "Address already in use" not in server.log():
                raise
            (directory / "homeserver.db").unlink(missing_ok=True)
    raise AssertionError("unreachable")


def _launch(python: Path, directory: Path, cert: Path, key: Path,
            extra_config: dict[str, Any] | None) -> SynapseServer:
    fed_port, client_port = free_port(), free_port()
    while client_port == fed_port:
        client_port = free_port()
    shared_secret = secrets.token_hex(24)
    config = synapse_config(directory, fed_port=fed_port, client_port=client_port,
                            shared_secret=shared_secret, cert=cert, key=key)
    for k, v in (extra_config or {}).items():
        if v is None:
            config.pop(k, None)
        else:
            config[k] = v
    # JSON is YAML: no YAML writer needed on our side.
    config_path = directory / "homeserver.yaml"
    config_path.write_text(json.dumps(config, indent=1))
    log_path = directory / "synapse.log"  # no log_config: Synapse logs INFO to stderr
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PALISADE", "DJANGO", "VIRTUAL_ENV", "PYTHON"))}
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(python), "-m", "synapse.app.homeserver", "-c", str(config_path)],
            cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    return SynapseServer(
        server_name=config["server_name"], base_url=f"http://127.0.0.1:{client_port}",
        fed_url=f"https://127.0.0.1:{fed_port}", shared_secret=shared_secret,
        directory=directory, log_path=log_path, process=process,
    )


def _wait_until_up(server: SynapseServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"Synapse exited with {server.process.returncode}:\n"
                               f"{server.log()[-4000:]}")
        try:
            versions = httpx.get(server.base_url + "/_matrix/client/versions", timeout=2)
            keys = server.federation_get("/_matrix/key/v2/server")
            # Ours, not another process that briefly holds a port free_port() handed out.
            if versions.is_success and keys.is_success \
                    and keys.json().get("server_name") == server.server_name:
                return
        except (httpx.HTTPError, ValueError) as e:
            last = e
        time.sleep(0.3)
    raise RuntimeError(f"Synapse did not answer within {STARTUP_TIMEOUT_S}s ({last!r}):\n"
                       f"{server.log()[-4000:]}")


def profile_path(user_id: str) -> str:
    return f"/_matrix/client/v3/profile/{quote(user_id, safe='')}"


@pytest.fixture(scope="module", name="synapse")
def synapse_fixture(tmp_path_factory):
    """One real Synapse per test module (see the module docstring for its configuration)."""
    require_synapse_python()
    directory = tmp_path_factory.mktemp("synapse")
    server = start_synapse(directory)
    yield server
    server.stop()
    if server.process.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL):
        print(f"Synapse exited with {server.process.returncode}; log: {server.log_path}")
    shutil.rmtree(directory / "media_store", ignore_errors=True)
