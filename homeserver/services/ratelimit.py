"""Token-bucket rate limits, configured per action in `[rate_limits]` and kept in the Django cache
(Redis in production, so all workers share a bucket; per-process memory in the embedded mode).

    check_rate_limit("login", f"ip:{ip}")      # raises 429 M_LIMIT_EXCEEDED when over the limit

Spec: client-server API "Rate limiting": 429 with errcode M_LIMIT_EXCEEDED and `retry_after_ms`.

Each bucket is stored as one number, its "theoretical arrival time" (the GCRA form of a token
bucket of `burst` tokens refilled at `per_second`): a request is admitted when the bucket would
not overflow, and moves the time forward by one emission interval. The read-modify-write is not
atomic across processes; two racing requests may both be admitted, which errs on the side of
availability by at most the number of concurrent requests.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time

from django.conf import settings
from django.core.cache import cache

from homeserver.protocol.errors import Errcode, MatrixError

_local_lock = threading.Lock()  # Serialises the read-modify-write within this process.


def _limit_for(action: str) -> tuple[float, int] | None:
    limits = settings.PALISADE.rate_limits
    if not limits.enabled:
        return None
    rule = getattr(limits, action, None)
    if rule is None or not hasattr(rule, "per_second"):
        raise ValueError(f"no rate limit named {action!r} in [rate_limits]")
    return float(rule.per_second), int(rule.burst)


def _cache_key(action: str, key: str) -> str:
    # Keys may contain anything (user IDs, IPv6 addresses); the cache wants short safe keys.
    digest = hashlib.sha256(f"{action}\0{key}".encode()).hexdigest()[:32]
    return f"palisade:rl:{action}:{digest}"


def check_rate_limit(action: str, key: str) -> None:
    """Take one token from the (action, key) bucket or raise 429 M_LIMIT_EXCEEDED.

    `action` names a `[rate_limits]` entry (login, registration, message, federation, ...);
    `key` says whose bucket it is, e.g. "ip:203.0.113.7" or "user:@alice:example.org".
    """
    limit = _limit_for(action)
    if limit is None:
        return
    per_second, burst = limit
    interval = 1.0 / per_second
    window = burst * interval  # how far ahead of now the bucket may run before it is full
    ckey = _cache_key(action, key)
    with _local_lock:
        now = time.time()
        tat = max(float(cache.get(ckey) or 0.0), now)
        new_tat = tat + interval
        if new_tat - now > window:
            retry_after_ms = max(1, math.ceil((new_tat - now - window) * 1000))
            raise MatrixError(
                429, Errcode.LIMIT_EXCEEDED, "Too many requests", retry_after_ms=retry_after_ms
            )
        cache.set(ckey, new_tat, timeout=math.ceil(window) + 1)
