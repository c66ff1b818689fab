"""One attempt to deliver one notification to one pusher's push gateway.

Spec: push gateway API POST /_matrix/push/v1/notify, and client-server API POST /pushers/set
(`data` is forwarded without `url`; `format: event_id_only` sends only event_id, room_id,
counts and devices). Compliance (REQUIREMENTS.md "Push"): with `[push] include_content = false`
(the default of every profile but `standard`) every notification is sent in that reduced form:
no type, content, sender, sender display name, room name or alias ever leaves the server.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.protocol.push_rules import tweaks
from homeserver.services.events.client_format import format_client_events
from homeserver.storage import counts as count_store
from homeserver.storage import events as event_store
from homeserver.storage import push as push_store
from homeserver.storage import push_actions as action_store
from homeserver.storage import state as state_store
from homeserver.storage.push import PusherRecord
from homeserver.storage.push_actions import NotificationRow

logger = logging.getLogger(__name__)

DONE, RETRY, DROPPED = "done", "retry", "dropped"


def gateway_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def include_content() -> bool:
    cfg = settings.PALISADE
    return cfg.push.include_content_for(cfg.compliance_profile)


def _state_content(room_id: str, etype: str, state_key: str) -> dict[str, Any]:
    eid = state_store.current_state_ids(room_id, [(etype, state_key)]).get((etype, state_key))
    ev = event_store.get_event(eid) if eid else None
    return ev.content if ev is not None else {}


def _event_fields(user_id: str, row: NotificationRow) -> dict[str, Any]:
    """type, sender, sender_display_name, room_name, room_alias, content, user_is_target."""
    rec = event_store.get_event_records([row.event_id]).get(row.event_id)
    if rec is None:
        return {}
    ev = format_client_events([rec])[0]  # redaction-aware
    out: dict[str, Any] = {"type": ev["type"], "sender": ev["sender"]}
    if ev.get("content"):
        out["content"] = ev["content"]
    name = _state_content(row.room_id, "m.room.member", ev["sender"]).get("displayname")
    if isinstance(name, str) and name:
        out["sender_display_name"] = name
    room_name = _state_content(row.room_id, "m.room.name", "").get("name")
    if isinstance(room_name, str) and room_name:
        out["room_name"] = room_name
    alias = _state_content(row.room_id, "m.room.canonical_alias", "").get("alias")
    if isinstance(alias, str) and alias:
        out["room_alias"] = alias
    if ev["type"] == "m.room.member":
        out["user_is_target"] = ev.get("state_key") == user_id
    return out


def build_notification(pusher: PusherRecord, row: NotificationRow,
                       include: bool) -> dict[str, Any]:
    """The /notify request body for one pusher; `include`: include_content()."""
    t = tweaks(row.actions)
    data = {k: v for k, v in pusher.data.items() if k != "url"}
    unread = count_store.total_unread(pusher.user_id)
    n: dict[str, Any] = {
        "event_id": row.event_id,
        "room_id": row.room_id,
        # Spec: counts whose value is zero should be omitted.
        "counts": {"unread": unread} if unread else {},
        "prio": "high" if t.get("sound") or t.get("highlight") else "low",
        "devices": [{"app_id": pusher.app_id, "pushkey": pusher.pushkey,
                     "pushkey_ts": pusher.pushkey_ts, "data": data, "tweaks": t}],
    }
    if include and pusher.data.get("format") != "event_id_only":
        n.update(_event_fields(pusher.user_id, row))
    return {"notification": n}


def attempt_delivery(pusher_id: int, event_id: str, include: bool) -> str:
    """POST the notification; DONE, RETRY (network error or non-2xx answer) or DROPPED (the
    pusher or notification no longer exists)."""
    pusher = push_store.get_pusher(pusher_id)
    if pusher is None or pusher.kind != "http":
        return DROPPED
    row = action_store.actions_for(pusher.user_id, event_id)
    if row is None:
        return DROPPED
    body = build_notification(pusher, row, include)
    url = pusher.data.get("url", "")
    try:
        resp = httpx.post(url, json=body, timeout=settings.PALISADE.push.gateway_timeout_seconds,
                          follow_redirects=False)
    except httpx.HTTPError as e:
        logger.warning("push gateway %s unreachable: %s", gateway_origin(url), type(e).__name__)
        return RETRY
    if not resp.is_success:
        logger.warning("push gateway %s answered %s", gateway_origin(url), resp.status_code)
        return RETRY
    try:
        rejected = resp.json().get("rejected") or []
    except ValueError:
        rejected = []
    if isinstance(rejected, list) and pusher.pushkey in rejected:
        _remove_rejected(pusher)
    return DONE


def _remove_rejected(pusher: PusherRecord) -> None:
    """Spec: "Homeservers must cease sending notification requests for these pushkeys and
    remove the associated pushers"."""
    with transaction.atomic():
        if push_store.delete_pusher(pusher.user_id, pusher.app_id, pusher.pushkey):
            record(AuditAction.PUSHER_REMOVED, actor="push gateway",
                   actor_type=ActorType.REMOTE_SERVER, target=pusher.user_id,
                   details={"app_id": pusher.app_id,
                            "gateway": gateway_origin(pusher.data.get("url", "")),
                            "reason": "rejected by the push gateway"})
