"""TURN credentials. Spec: client-server API "Voice over IP", GET /voip/turnServer.

Time-limited credentials per the TURN REST API convention (coturn `use-auth-secret`):
username = "<expiry unix seconds>:<user_id>", password = base64(HMAC-SHA1(secret, username)).
Without `[turn] uris` the server offers no TURN server and answers `{}` (the spec defines no
"no TURN" response; `{}` is what clients already handle).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from django.conf import settings


def turn_credentials(user_id: str, now_s: int | None = None) -> dict:
    cfg = settings.PALISADE.turn
    if not cfg.uris or not cfg.shared_secret:
        return {}
    ttl = cfg.user_lifetime_seconds
    expiry = (int(time.time()) if now_s is None else now_s) + ttl
    username = f"{expiry}:{user_id}"
    mac = hmac.new(cfg.shared_secret.encode(), username.encode(), hashlib.sha1).digest()
    return {
        "username": username,
        "password": base64.b64encode(mac).decode(),
        "uris": list(cfg.uris),
        "ttl": ttl,
    }
