"""The admin-managed federation allow/deny entries (compliance.models.FederationListEntry), as
read by every worker process.

A change made in one process (the admin runs in the client listener's workers) must take effect
in all others (federation listeners, Celery workers) without a restart. Each process keeps the
entries in memory and, at most every CHECK_SECONDS, compares a cheap marker of the table (row
count and the latest `updated_at`) with the one it loaded: an added, edited or deleted entry
changes the marker, and the entries are read again. So a change applies everywhere within
CHECK_SECONDS.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.db.models import Count, Max

from compliance.models import FederationListEntry

CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class AdminLists:
    allowed: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()


@dataclass
class _Cache:
    lists: AdminLists = AdminLists()
    marker: tuple | None = None
    checked_at: float = float("-inf")


_cache = _Cache()
_lock = threading.Lock()


def _marker() -> tuple:
    agg = FederationListEntry.objects.aggregate(n=Count("id"), latest=Max("updated_at"),
                                                top=Max("id"))
    return agg["n"], agg["latest"], agg["top"]


def admin_lists() -> AdminLists:
    """The current entries, at most CHECK_SECONDS old."""
    now = time.monotonic()
    if now - _cache.checked_at < CHECK_SECONDS:
        return _cache.lists
    with _lock:
        if now - _cache.checked_at < CHECK_SECONDS:
            return _cache.lists
        marker = _marker()
        if marker != _cache.marker:
            rows = list(FederationListEntry.objects.values_list("kind", "server"))
            _cache.lists = AdminLists(
                allowed=tuple(s for k, s in rows if k == FederationListEntry.Kind.ALLOW),
                denied=tuple(s for k, s in rows if k == FederationListEntry.Kind.DENY),
            )
            _cache.marker = marker
        _cache.checked_at = time.monotonic()
        return _cache.lists


def forget() -> None:
    """Drop this process's copy (tests; the next read goes to the database)."""
    with _lock:
        _cache.lists, _cache.marker, _cache.checked_at = AdminLists(), None, float("-inf")


def source() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """federation_access SOURCES entry: (allowed patterns, denied patterns)."""
    lists = admin_lists()
    return lists.allowed, lists.denied
