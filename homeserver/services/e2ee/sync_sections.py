"""The end-to-end encryption sections of /sync (one provider, see services/sync/providers.py).

Spec: client-server API "Extensions to /sync" of "End-to-End Encryption" (device_lists,
device_one_time_keys_count, device_unused_fallback_key_types) and of "Send-to-Device
messaging" (to_device).
"""

from __future__ import annotations

from typing import Any

from homeserver.services.e2ee.device_keys import key_counts
from homeserver.services.e2ee.device_lists import device_list_delta
from homeserver.services.e2ee.to_device import sync_to_device
from homeserver.storage import e2ee_keys as key_store


def e2ee(req: Any, now: int, resp: dict[str, Any]) -> bool:
    since = min(req.since, now) if req.since is not None else None
    events = sync_to_device(req.user_id, req.device_id, since, now)
    resp["to_device"] = {"events": events}
    changed = bool(events)
    # Spec: device_lists is only populated for an incremental sync.
    if since is not None:
        lists_changed, left = device_list_delta(req.user_id, since, now)
        resp["device_lists"] = {"changed": lists_changed, "left": left}
        changed = changed or bool(lists_changed or left)
    if req.device_id:
        resp["device_one_time_keys_count"] = key_counts(req.user_id, req.device_id)
        resp["device_unused_fallback_key_types"] = key_store.unused_fallback_key_types(
            req.user_id, req.device_id
        )
    return changed
