"""The ASGI application the server runs (homeserver/asgi.py): Matrix paths through the lean
MatrixASGIHandler, everything else through Django's stock handler. Driven at the ASGI level,
as uvicorn drives it, against the real database."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.db import connection, transaction

from homeserver.api.asgi_handler import DatabaseThreads, database_thread_count
from homeserver.asgi import application, matrix_handler
from homeserver.services.accounts.sessions import start_session
from tests.accounts.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def close_database_threads_connections():
    """The handler's database threads keep their connections; close them after each test so
    the test database can be dropped at the end."""
    yield
    threads = len(matrix_handler.executor._threads)
    if threads:
        barrier = threading.Barrier(threads)

        def close() -> None:
            connection.close()
            barrier.wait(10)  # one job per thread: each closes its own connection

        for f in [matrix_handler.executor.submit(close) for _ in range(threads)]:
            f.result(20)


def scope(path: str, *, method: str = "GET", query: str = "", token: str | None = None) -> dict:
    headers = [(b"host", b"localhost")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8008),
    }


async def call(s: dict, body: bytes = b"", timeout: float = 10) -> tuple[int, dict, bytes]:
    app = ApplicationCommunicator(application, s)
    await app.send_input({"type": "http.request", "body": body})
    start = await app.receive_output(timeout)
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    chunks = []
    while True:
        msg = await app.receive_output(timeout)
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    await app.wait(timeout)
    return start["status"], headers, b"".join(chunks)


def new_token() -> str:
    user_id = make_user()
    with transaction.atomic():
        return start_session(user_id, device_id=None, display_name="t",
                             refreshable=False).access_token


async def test_matrix_responses_keep_cors_and_security_headers_without_page_middlewares():
    status, headers, body = await call(scope("/_matrix/client/versions"))
    assert status == 200 and "v1.11" in json.loads(body)["versions"]
    assert headers["access-control-allow-origin"] == "*"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "x-request-id" in headers  # audit context middleware still runs
    # No session or CSRF machinery on the API: no cookie, no Vary: Cookie.
    assert "set-cookie" not in headers and "cookie" not in headers.get("vary", "").lower()


async def test_admin_pages_keep_the_full_middleware_stack():
    status, headers, _ = await call(scope("/admin/login/"))
    assert status == 200
    assert "csrftoken=" in headers.get("set-cookie", "")  # CSRF middleware ran
    assert headers["x-frame-options"] == "DENY"


async def test_matrix_errors_and_unknown_endpoints_are_matrix_json():
    status, _, body = await call(scope("/_matrix/client/v3/account/whoami"))
    assert status == 401 and json.loads(body)["errcode"] == "M_MISSING_TOKEN"
    status, _, body = await call(scope("/_matrix/client/v3/no/such/endpoint"))
    assert status == 404 and json.loads(body)["errcode"] == "M_UNRECOGNIZED"
    status, _, body = await call(scope("/_matrix/client/v3/account/whoami", method="DELETE"))
    assert status == 405 and json.loads(body)["errcode"] == "M_UNRECOGNIZED"


async def test_requests_reuse_a_fixed_set_of_database_threads():
    token = await sync_to_async(new_token)()
    for _ in range(12):
        status, _, body = await call(scope("/_matrix/client/v3/account/whoami", token=token))
        assert status == 200 and json.loads(body)["user_id"].startswith("@")
    db_threads = [t for t in threading.enumerate() if t.name.startswith("palisade-db")]
    # No thread per request: twelve authenticated requests ran on at most the pool's threads.
    assert 1 <= len(db_threads) <= database_thread_count()


async def test_a_client_that_disconnects_ends_its_long_poll():
    token = await sync_to_async(new_token)()
    _, _, body = await call(scope("/_matrix/client/v3/sync", token=token))
    since = json.loads(body)["next_batch"]
    app = ApplicationCommunicator(
        application,
        scope("/_matrix/client/v3/sync", query=f"since={since}&timeout=30000", token=token))
    await app.send_input({"type": "http.request", "body": b""})
    await asyncio.sleep(0.5)  # parked in the long-poll
    started = time.monotonic()
    await app.send_input({"type": "http.disconnect"})
    await app.wait(5)  # the request ends instead of waiting out its 30 s timeout
    assert time.monotonic() - started < 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates a PostgreSQL backend")
def test_a_database_thread_reconnects_after_its_connection_is_lost():
    """PostgreSQL restarted or the connection was cut: the request that hits the dead
    connection fails, the thread drops it, and the next request on that thread works."""
    pool = DatabaseThreads(max_workers=1)
    try:
        def backend_pid() -> int:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                return cur.fetchone()[0]

        pid = pool.submit(backend_pid).result()
        assert pool.submit(backend_pid).result() == pid  # the thread keeps its connection
        with connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(Exception):  # noqa: B017 - psycopg's or Django's wrapper
            pool.submit(backend_pid).result()
        assert pool.submit(backend_pid).result() != pid  # a new connection, not the dead one
    finally:
        pool.submit(lambda: connection.close()).result()
        pool.shutdown()
