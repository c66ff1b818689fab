"""Per-request audit context: the request id and source address every record carries.

Set by `audit.middleware.AuditContextMiddleware` for HTTP requests; management commands and
tasks run with the empty context (or set their own with `audit_context(...)`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AuditContext:
    request_id: str = ""
    source_addr: str = ""


_current: contextvars.ContextVar[AuditContext] = contextvars.ContextVar(
    "palisade_audit_context", default=AuditContext()  # noqa: B039 (frozen, immutable)
)


def current_context() -> AuditContext:
    return _current.get()


def set_context(ctx: AuditContext) -> contextvars.Token[AuditContext]:
    return _current.set(ctx)


def reset_context(token: contextvars.Token[AuditContext]) -> None:
    _current.reset(token)


@contextlib.contextmanager
def audit_context(request_id: str = "", source_addr: str = "") -> Iterator[AuditContext]:
    """Run a block (a task, a command) with its own request id and source address."""
    ctx = AuditContext(request_id, source_addr)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
