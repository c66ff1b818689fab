"""The ASGI handler for Matrix paths (/_matrix/, /_synapse/, /.well-known/matrix/).

Django's stock ASGIHandler is built for pages: every request goes through the whole MIDDLEWARE
list (sessions, CSRF, auth, messages, ...), sends the request_started/finished signals, and
runs the request's synchronous work (the ORM) in a thread created for that request alone. On
the Matrix API none of that is needed, and it was most of the CPU a small request costs
(docs/benchmarks.md): the sync middlewares and signal receivers each hop between the event
loop and a thread, and a new thread is started and joined per request.

This handler differs in three ways and nothing else:
- the middleware chain is only what a Matrix endpoint needs (audit context, Matrix errors and
  CORS), all of it async, so a request makes no thread hop before its view;
- no request_started/request_finished signals: their only work here would be closing the
  database connection, and database threads keep theirs (below);
- the synchronous work of every request runs on a fixed pool of long-lived database threads,
  each keeping its own database connection (a pooled one on PostgreSQL) from one call to the
  next. A view's `sync_to_async` calls may land on different pool threads; every service call
  is self-contained (its transaction opens and closes inside the call), so nothing relies on
  two calls sharing a thread.

The admin and the OIDC pages keep Django's stock handler and the full middleware list.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connections
from django.urls import set_script_prefix

from homeserver.api.middleware import MATRIX_PREFIXES
from homeserver.storage.stream import keep_connection_on_this_thread

logger = logging.getLogger(__name__)

MATRIX_MIDDLEWARE = [
    "audit.middleware.AuditContextMiddleware",
    "homeserver.api.middleware.MatrixMiddleware",
]


def _run_keeping_connection(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    keep_connection_on_this_thread()
    try:
        return fn(*args, **kwargs)
    finally:
        # A connection that failed (PostgreSQL restarted, network error) is dropped here, so
        # the next call on this thread reconnects instead of failing again. A healthy one is
        # kept: no per-request checkout.
        for conn in connections.all(initialized_only=True):
            if conn.errors_occurred and not conn.in_atomic_block:
                conn.close_if_unusable_or_obsolete()


class DatabaseThreads(ThreadPoolExecutor):
    """Long-lived threads for the synchronous (ORM) work of Matrix requests."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:  # type: ignore[override]
        return super().submit(_run_keeping_connection, fn, *args, **kwargs)


def database_thread_count() -> int:
    """Threads that each hold a database connection. With the PostgreSQL pool, two connections
    of `pool_max_size` stay free for work outside these threads (password hashing, the
    embedded federation sweeper, media), which takes a connection and gives it back."""
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        return max(1, int(pool.get("max_size", 10)) - 2)
    return 8


class _DatabaseContext:
    """The thread-sensitive context of every Matrix request (see MatrixASGIHandler)."""

    _exited = False  # asgiref checks it; this context is never exited


class MatrixASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        self.executor = DatabaseThreads(
            max_workers=database_thread_count(), thread_name_prefix="palisade-db"
        )
        # asgiref's thread-sensitive calls look up their executor by this context object; it
        # is registered once and never exited, so it stays valid for any task, however long
        # it lives (asgiref's own ThreadSensitiveContext(executor=...) refuses calls after
        # its block ends).
        self.database_context = _DatabaseContext()
        SyncToAsync.context_to_thread_executor[self.database_context] = self.executor
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler builds the chain from settings.MIDDLEWARE; build it from ours instead.
        # Runs once, at start, before any request.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = MATRIX_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Matrix paths are HTTP only, not {scope['type']}")
        # Every thread-sensitive call of this request, and of tasks it starts that outlive it
        # (a typing period's expiry timer), goes to the database threads.
        token = SyncToAsync.thread_sensitive_context.set(self.database_context)
        try:
            await self.handle(scope, receive, send)
        finally:
            SyncToAsync.thread_sensitive_context.reset(token)

    async def handle(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                await self.send_response(error_response, send)
                return
            await self._respond_unless_disconnected(request, receive, send)
        finally:
            body_file.close()

    async def _respond_unless_disconnected(self, request: Any, receive: Any, send: Any) -> None:
        """Run the view while watching for the client going away: a long-polling /sync whose
        client disconnected is cancelled instead of running to its timeout."""

        async def respond() -> Any:
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client left while the body was being sent
            return response

        watcher = asyncio.create_task(self.listen_for_disconnect(receive))
        worker = asyncio.create_task(respond())
        await asyncio.wait((watcher, worker), return_when=asyncio.FIRST_COMPLETED)
        for task in (watcher, worker):
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
            else:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, RequestAborted):
                    pass
        if worker.done() and not worker.cancelled() and worker.exception() is None:
            _close_without_signal(worker.result())


def _close_without_signal(response: Any) -> None:
    """HttpResponse.close() minus the request_finished signal: run the response's closers
    (an open media file, the request's uploaded files)."""
    for closer in response._resource_closers:
        try:
            closer()
        except Exception:  # a failing closer must not fail the reply (as in Django)
            logger.exception("closing a response failed")
    response._resource_closers.clear()
    response.closed = True


def matrix_router(matrix_app: Any, other_app: Any) -> Any:
    """One ASGI application: Matrix paths to `matrix_app`, everything else to `other_app`."""

    async def application(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(MATRIX_PREFIXES):
            await matrix_app(scope, receive, send)
        else:
            await other_app(scope, receive, send)

    return application
