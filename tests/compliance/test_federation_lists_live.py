"""A deny entry a Compliance officer adds in the admin takes effect in the running server, in
another process, without a restart (REQUIREMENTS.md A_25534, "list source").

The real `palisade serve` runs two listeners, i.e. two uvicorn processes: the admin on the client
listener (plain HTTP) and the federation API on a TLS listener. The test plays a remote server:
it signs requests with its own key and publishes that key over TLS on a loopback port (a small
key server in a thread), so the live server verifies our X-Matrix signatures for real. Before
the entry our request is answered (200); after the officer saves the entry in the admin (a real
login and form POST), the next request from our origin gets 403 M_FORBIDDEN, within the
cache's check interval.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.signing import generate_signing_key, public_key_base64, sign_json
from homeserver.protocol.xmatrix import authorization_header
from tests.federation.tls import self_signed
from tests.live_server import REPO_ROOT, LiveServer, free_port, start_server

pytestmark = pytest.mark.live
PASSWORD = "correct horse battery staple"
KEY = generate_signing_key()


@pytest.fixture(scope="module")
def key_server(tmp_path_factory) -> Iterator[str]:
    """Our origin's /_matrix/key/v2/server over TLS on 127.0.0.1:PORT; yields the server name."""
    tmp = tmp_path_factory.mktemp("origin")
    cert, key = self_signed(tmp)
    port = free_port()
    name = f"127.0.0.1:{port}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.path.startswith("/_matrix/key/v2/server"):
                self.send_error(404)
                return
            doc = sign_json({"server_name": name,
                             "valid_until_ts": int(time.time() * 1000) + 3600_000,
                             "verify_keys": {KEY.key_id: {"key": public_key_base64(KEY)}},
                             "old_verify_keys": {}}, name, KEY)
            body = encode_canonical_json(doc)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield name
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[tuple[LiveServer, str]]:
    tmp = tmp_path_factory.mktemp("live")
    cert, key = self_signed(tmp)
    client_port, fed_port = free_port(), free_port()
    server = start_server(
        tmp, server_name=f"127.0.0.1:{fed_port}",
        public_baseurl=f"http://127.0.0.1:{client_port}/",
        listeners=[{"bind": "127.0.0.1", "port": client_port, "resources": ["client"]},
                   {"bind": "127.0.0.1", "port": fed_port, "resources": ["federation"],
                    "tls_certificate": str(cert), "tls_private_key": str(key)}],
        federation={"verify_tls": False, "allow_private_addresses": True},
    )
    yield server, f"https://127.0.0.1:{fed_port}"
    server.stop()


def make_officer(server: LiveServer, name: str) -> None:
    """A staff user in the Compliance officer group, created in the live server's database."""
    code = (
        "from django.contrib.auth.models import Group, User\n"
        f"u = User.objects.create_user({name!r}, password={PASSWORD!r}, is_staff=True)\n"
        "u.groups.add(Group.objects.get(name='Compliance officer'))\n"
    )
    env = {**os.environ, "PALISADE_CONFIG": str(server.config_path),
           "PALISADE_DATABASE_URL": server.database_url}
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO_ROOT, env=env,
                   check=True, capture_output=True, timeout=120)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def admin_add_deny_entry(server: LiveServer, name: str, entry: str) -> None:
    base = server.base_url
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as admin:
        page = admin.get("/admin/login/")
        r = admin.post("/admin/login/?next=/admin/", data={
            "csrfmiddlewaretoken": csrf_of(page.text), "username": name, "password": PASSWORD,
            "next": "/admin/"}, headers={"Referer": base + "/admin/login/"})
        assert r.status_code == 302, r.text[:2000]
        add = "/admin/compliance/federationlistentry/add/"
        page = admin.get(add)
        assert page.status_code == 200
        r = admin.post(add, data={"csrfmiddlewaretoken": csrf_of(page.text), "kind": "deny",
                                  "server": entry, "note": "live test"},
                       headers={"Referer": base + add})
        assert r.status_code == 302, r.text[:3000]
        listing = admin.get("/admin/compliance/federationlistentry/").text
        assert entry in listing


def signed_profile_request(fed_url: str, origin: str, destination: str,
                           user_id: str) -> httpx.Response:
    path = f"/_matrix/federation/v1/query/profile?user_id={quote(user_id)}"
    auth = authorization_header("GET", path, origin, destination, None, KEY)
    return httpx.get(fed_url + path, headers={"Authorization": auth}, verify=False, timeout=30)


def test_admin_deny_entry_refuses_the_next_inbound_request_without_restart(live, key_server):
    server, fed_url = live
    user = server.register_user("doc", "a long password")["user_id"]
    r = signed_profile_request(fed_url, key_server, server.server_name, user)
    assert r.status_code == 200, r.text  # our signature verifies: we federate
    pid_before = server.process.pid

    make_officer(server, "officer")
    admin_add_deny_entry(server, "officer", key_server.split(":")[0])  # host: every port

    deadline = time.monotonic() + 30  # the cache checks every 2 s; generous under load
    while True:
        r = signed_profile_request(fed_url, key_server, server.server_name, user)
        if r.status_code == 403 or time.monotonic() > deadline:
            break
        assert r.status_code == 200, r.text
        time.sleep(0.25)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN"), r.text
    assert server.process.pid == pid_before and server.process.poll() is None  # no restart
    # The audit log of the live server holds the admin change and the denial.
    code = (
        "import json\n"
        "from audit.models import AuditRecord\n"
        "print(json.dumps([[r.action, r.actor, r.details_dict.get('rule', '')]"
        " for r in AuditRecord.objects.order_by('seq')]))\n"
    )
    env = {**os.environ, "PALISADE_CONFIG": str(server.config_path),
           "PALISADE_DATABASE_URL": server.database_url}
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO_ROOT,
                         env=env, check=True, capture_output=True, text=True, timeout=120)
    records = json.loads(out.stdout.strip().splitlines()[-1])
    from audit.actions import AuditAction

    assert [AuditAction.ADMIN_OBJECT_ADDED, "officer", ""] in records
    assert [AuditAction.POLICY_DENIED, key_server, "federation.deny_list"] in records
