"""Fixtures for the identity-provider tests: a REAL OpenID provider (the `oidc-provider` npm
package, tests/idp/node/op.mjs, under the machine's Node) started per module, Palisade served
by pytest-django's live server (so tests can look at the database), and Debian's chromium
driven by Playwright (launch options as tests/audit/test_browser.py).

tests/idp/node/node_modules comes from `npm ci` there (.ci/run does it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk

from homeserver.config import Config
from idp.oidc import discovery
from tests.accounts.conftest import (  # noqa: F401 - fixtures are registered by import
    accounts_settings,
    api,
    stream_counter_row,
)
from tests.live_server import free_port

NODE_DIR = Path(__file__).resolve().parent / "node"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SECRET = "test-client-secret-0123456789-abcdefghij"


class _ClientApp(BaseHTTPRequestHandler):
    """Stands in for the Matrix client's web page that SSO redirects back to."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>client</title><h1 id='client-app'>client</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


_client_app = ThreadingHTTPServer(("127.0.0.1", 0), _ClientApp)
threading.Thread(target=_client_app.serve_forever, daemon=True).start()
CLIENT_HOST = f"http://127.0.0.1:{_client_app.server_address[1]}"
ALLOWED_OID = "1.2.276.0.76.4.50"
V3 = "/_matrix/client/v3"

ACCOUNTS = {
    "alice": {"password": "alice-pw", "sub": "248289761001",
              "claims": {"name": "Alice Arzt", "preferred_username": "alice",
                         "email": "alice@klinik.example", "professionOID": ALLOWED_OID,
                         "organizationName": "Klinik Nord", "groups": ["staff"]}},
    "bob": {"password": "bob-pw", "sub": "248289761002",
            "claims": {"name": "Bob Bader", "preferred_username": "bob",
                       "professionOID": "1.2.276.0.76.4.999", "organizationName": "Elsewhere"}},
    "carol": {"password": "carol-pw", "sub": "248289761003",
              "claims": {"name": "Carol Controller", "preferred_username": "carol",
                         "professionOID": ALLOWED_OID, "groups": ["auditors", "staff"]}},
    "dave": {"password": "dave-pw", "sub": "248289761004",
             "claims": {"name": "Dave Dev", "preferred_username": "dave",
                        "professionOID": ALLOWED_OID, "groups": ["developers"]}},
    "erin": {"password": "erin-pw", "sub": "248289761005",
             "claims": {"name": "Erin", "preferred_username": "erin",
                        "professionOID": ALLOWED_OID}},
    "frank": {"password": "frank-pw", "sub": "248289761006",
              "claims": {"name": "Frank", "preferred_username": "frank",
                         "professionOID": ALLOWED_OID}},
}


def url_of(live_server: Any) -> str:
    """The live server's URL by address: chromium here does not always resolve "localhost"."""
    return live_server.url.replace("://localhost:", "://127.0.0.1:")


def node_ready() -> None:
    if not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("tests/idp/node/node_modules is missing: run `npm ci` in tests/idp/node "
                    "(.ci/run does)")
    if shutil.which("node") is None:
        pytest.fail("node is not installed")


@dataclass
class OpenIdProvider:
    issuer: str
    process: subprocess.Popen
    log_path: Path
    pkjwt_pem: Path

    def control(self, action: str, body: dict | None = None, **params: str) -> dict:
        resp = httpx.post(f"{self.issuer}/_test/{action}", params=params,
                          json=body or {}, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _private_key_jwt_pair(tmp: Path) -> tuple[Path, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path = tmp / "client_key.pem"
    path.write_bytes(pem)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk_dict = {k: v.decode() if isinstance(v, bytes) else v
                for k, v in jwk.construct(public, "RS256").to_dict().items()}
    return path, {**jwk_dict, "kid": "palisade-client-key", "use": "sig"}


@pytest.fixture(scope="module")
def op(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    """A real OpenID provider on a free loopback port, with three clients registered for the
    live Palisade: `palisade` (client_secret_basic), `palisade-par` (private_key_jwt + PAR),
    `palisade-post` (client_secret_post)."""
    node_ready()
    tmp = tmp_path_factory.mktemp("op")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    base = url_of(live_server)
    pem, public_jwk = _private_key_jwt_pair(tmp)
    common = {"redirect_uris": [f"{base}/_palisade/oidc/callback"],
              "grant_types": ["authorization_code", "refresh_token"],
              "backchannel_logout_session_required": True}
    clients = [
        {**common, "client_id": "palisade", "client_secret": SECRET,
         "token_endpoint_auth_method": "client_secret_basic",
         "backchannel_logout_uri": f"{base}/_palisade/oidc/backchannel_logout/test"},
        {**common, "client_id": "palisade-par", "token_endpoint_auth_method": "private_key_jwt",
         "jwks": {"keys": [public_jwk]},
         "backchannel_logout_uri": f"{base}/_palisade/oidc/backchannel_logout/par"},
        {**common, "client_id": "palisade-post", "client_secret": SECRET,
         "token_endpoint_auth_method": "client_secret_post"},
    ]
    config = tmp / "op.json"
    config.write_text(json.dumps({"port": port, "issuer": issuer, "clients": clients,
                                  "accounts": ACCOUNTS}))
    log_path = tmp / "op.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(["node", str(NODE_DIR / "op.mjs"), str(config)], cwd=NODE_DIR,
                                stdout=subprocess.PIPE, stderr=log)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # {"ready": true, ...} once listening
    if not line:
        proc.wait(timeout=10)
        raise RuntimeError(f"the OpenID provider did not start:\n{log_path.read_text()}")
    provider = OpenIdProvider(issuer, proc, log_path, pem)
    yield provider
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    discovery.forget()


def configure_validated(settings: Any, **changes: Any) -> None:
    """Like tests.accounts.conftest.configure, but the result is validated (so nested tables
    given as dicts become their config models, as when read from the TOML file)."""
    data = settings.PALISADE.model_dump()
    data.update(changes)
    settings.PALISADE = Config.model_validate(data)


def provider_config(op: OpenIdProvider, **overrides: Any) -> dict[str, Any]:
    base = {
        "id": "test", "name": "Test IdP", "issuer": op.issuer, "client_id": "palisade",
        "client_secret": SECRET, "client_auth_method": "client_secret_basic",
        "scopes": ["openid", "profile", "email", "groups", "ti-messenger"],
        "user_mapping": {"localpart": "{preferred_username}", "display_name": "{name}",
                         "email": "{email}", "organisation": "{organizationName}"},
        "attribute_requirements": [{"claim": "professionOID", "one_of": [ALLOWED_OID]}],
    }
    return {**base, **overrides}


@pytest.fixture
def sso(settings: Any, op: OpenIdProvider, live_server: Any, tmp_path: Path) -> Any:
    """Palisade configured for the test provider; returns a helper to reconfigure."""
    def apply(*providers: dict[str, Any], **sso_section: Any) -> None:
        configure_validated(settings, public_baseurl=url_of(live_server) + "/",
                            oidc_providers=list(providers or (provider_config(op),)),
                            sso={"client_whitelist": [CLIENT_HOST + "/cb"],
                                 "oauth2_signing_key_path": str(tmp_path / "oauth2.pem"),
                                 **sso_section})
        discovery.forget()

    apply()
    return apply


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def new_page(browser: Any) -> Any:
    """A fresh browser profile (own cookie jar)."""
    context = browser.new_context()
    # The provider's stock logout page loads a web font; there is no network here.
    context.route("https://fonts.googleapis.com/**", lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def sso_url(base: str, redirect: str = CLIENT_HOST + "/cb?session=abc",
            idp: str | None = "test") -> str:
    path = "/_matrix/client/v3/login/sso/redirect" + (f"/{idp}" if idp else "")
    return f"{base}{path}?redirectUrl={quote(redirect, safe='')}"


def op_sign_in(page: Any, login: str) -> None:
    page.wait_for_selector("#op-login")
    page.fill("#op-login", login)
    page.fill("#op-password", ACCOUNTS[login]["password"])
    page.click("#op-submit")


def login_token_from(url: str) -> str:
    return parse_qs(urlsplit(url).query)["loginToken"][0]


def sign_in(browser: Any, base: str, login: str, **kw: Any) -> tuple[Any, str]:
    page = new_page(browser)
    page.goto(sso_url(base, **kw))
    op_sign_in(page, login)
    page.wait_for_url(lambda u: u.startswith(CLIENT_HOST + "/"))
    return page, page.url


def token_login(base: str, token: str, **extra: Any) -> httpx.Response:
    return httpx.post(f"{base}{V3}/login", json={"type": "m.login.token", "token": token,
                                                 **extra}, timeout=30)


def refused(page: Any, reason: str, status: int | None = None) -> None:
    page.wait_for_selector("#sso-error")
    assert page.locator("#sso-error-reason").inner_text() == reason, page.content()
    assert "Sign-in failed" in page.title()


def wait_until(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
