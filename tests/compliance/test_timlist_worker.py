"""The TI-Messenger federation list kept by a real Celery worker with embedded beat, applied by
the real server (REQUIREMENTS.md A_25537): a TI-M deployment starts with no list, so federation
is blocked (403); the worker's start-up refresh fails (the list server answers 500); beat retries
after the retry interval, gets the signed list, and the server's federation listener, another
process, admits the listed origin within seconds.

Needs Redis (Celery's broker): skipped when PALISADE_REDIS_URL is unset, failed under CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from homeserver.protocol.signing import generate_signing_key
from homeserver.protocol.xmatrix import authorization_header
from tests.compliance import test_timlist as timlist_tests
from tests.compliance.test_timlist import LISTED, federation_list
from tests.live_server import REPO_ROOT, start_server

pytestmark = pytest.mark.live
list_server, pki = timlist_tests.list_server, timlist_tests.pki


def redis_url_or_skip() -> str:
    url = os.environ.get("PALISADE_REDIS_URL", "")
    if url:
        return url
    reason = "needs Redis as Celery's broker: set PALISADE_REDIS_URL (e.g. redis://127.0.0.1:6379/14)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def inbound_status(server, origin: str) -> int:
    """Status of a federation request signed by `origin` (its key is unknown to the server:
    401 once the lists admit it, 403 while they refuse it)."""
    path = f"/_matrix/federation/v1/query/profile?user_id={quote('@a:' + server.server_name)}"
    auth = authorization_header("GET", path, origin, server.server_name, None,
                                generate_signing_key())
    return httpx.get(server.base_url + path, headers={"Authorization": auth}, timeout=30
                     ).status_code


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_worker_and_beat_keep_the_list_and_the_server_applies_it(tmp_path, list_server, pki):
    redis_url = redis_url_or_skip()
    list_server.serve(b"maintenance", status=500)
    server = start_server(
        tmp_path, compliance_profile="ti-m-pro", redis={"url": redis_url},
        federation={"ti_messenger_list": {
            "url": list_server.url, "trust_anchors": [str(pki["anchor_pem"])],
            "retry_interval_seconds": 10, "refresh_interval_seconds": 3600}})
    worker = None
    try:
        assert inbound_status(server, LISTED) == 403  # no list yet: all federation blocked
        env = {**os.environ, "PALISADE_CONFIG": str(server.config_path),
               "PALISADE_DATABASE_URL": server.database_url, "PALISADE_REDIS_URL": redis_url}
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "homeserver", "worker", "-B",
             "--pool", "solo", "-s", str(tmp_path / "beat-schedule"), "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-l", "info"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        # The worker's start-up refresh: it fails (500), the list stays missing.
        wait_for(lambda: len(list_server.requests) >= 1, 120, "the start-up fetch")
        list_server.serve(pki["signer"].sign(federation_list(9, LISTED)))
        assert inbound_status(server, LISTED) == 403
        # Beat retries after the retry interval and gets the list; the server applies it.
        wait_for(lambda: len(list_server.requests) >= 2, 90, "beat's retry")
        wait_for(lambda: inbound_status(server, LISTED) == 401, 30,
                 "the listed origin to pass the federation lists")
        assert inbound_status(server, "unlisted.example") == 403
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from compliance.models import TiMessengerFederationList as T; "
             "r = T.objects.get(pk=1); print(r.version, r.signature_alg, r.last_error[:40])"],
            cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True, timeout=120)
        version, alg, *error = out.stdout.strip().splitlines()[-1].split(" ")
        assert (version, alg) == ("9", "ES256")
        assert "HTTP 500" in " ".join(error)  # the failed start-up fetch is on record
    finally:
        if worker is not None:
            os.killpg(worker.pid, 15)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, 9)
                worker.wait(timeout=10)
        server.stop()
