"""The document this server publishes at /_matrix/key/v2/server.

Spec: server-server API "Publishing Keys": server_name, verify_keys, old_verify_keys,
valid_until_ts, signed by every current key.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from homeserver.protocol.signing import public_key_base64, sign_json
from homeserver.services.signing_keys import server_signing_key

# How long other servers may cache our keys. Spec: servers SHOULD NOT cache beyond
# valid_until_ts; a day keeps rotation responsive without hammering us.
KEY_VALIDITY_MS = 24 * 3600 * 1000


def server_key_document(now_ms: int | None = None) -> dict[str, Any]:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    key = server_signing_key()
    config = settings.PALISADE
    doc = {
        "server_name": config.server_name,
        "valid_until_ts": now_ms + KEY_VALIDITY_MS,
        "verify_keys": {key.key_id: {"key": public_key_base64(key)}},
        "old_verify_keys": {
            key_id: {"key": old.key, "expired_ts": old.expired_ts}
            for key_id, old in config.old_verify_keys.items()
        },
    }
    return sign_json(doc, config.server_name, key)
