"""Running password-hashing services off the shared sync thread.

Views normally call services with `sync_to_async` (thread-sensitive: one thread per process
runs all ORM work in order). A password check costs hundreds of milliseconds of CPU by design;
run there, one login would stall every other request's database work in the process. These
services run in asgiref's thread pool instead, on a database connection of their own that is
closed when they return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

T = TypeVar("T")


async def run_password_service(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    def call() -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()  # this pool thread's connections only

    return await sync_to_async(call, thread_sensitive=False)()
