"""Pushers: where a user's notifications are sent. Spec: client-server API GET /pushers and
POST /pushers/set. Every change is audited (a pusher decides where notification data leaves
the server); the pushkey itself (a device routing token) is never written to the audit log."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.db import transaction

from audit.actions import AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.push.delivery import gateway_origin
from homeserver.storage import push as push_store

# Spec POST /pushers/set: data.url "MUST be an HTTPS URL with a path of /_matrix/push/v1/notify".
NOTIFY_PATH = "/_matrix/push/v1/notify"
MAX_APP_ID = 64
MAX_PUSHKEY_BYTES = 512
MAX_NAME = 255
MAX_LANG = 64
MAX_DATA_BYTES = 4096
FORMATS = ("event_id_only",)


def list_pushers(user_id: str) -> dict[str, Any]:
    return {"pushers": [
        {"pushkey": p.pushkey, "kind": p.kind, "app_id": p.app_id,
         "app_display_name": p.app_display_name, "device_display_name": p.device_display_name,
         "profile_tag": p.profile_tag, "lang": p.lang, "data": p.data}
        for p in push_store.pushers_of(user_id)
    ]}


def _string(body: dict[str, Any], key: str, max_len: int, *, max_bytes: bool = False) -> str:
    if key not in body:
        raise MatrixError(400, Errcode.MISSING_PARAM, f"Missing parameter: {key}")
    value = body[key]
    if not isinstance(value, str):
        raise MatrixError(400, Errcode.BAD_JSON, f"{key} must be a string")
    size = len(value.encode()) if max_bytes else len(value)
    if not value or size > max_len:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"{key} must be 1-{max_len} "
                          f"{'bytes' if max_bytes else 'characters'}")
    return value


def check_gateway_url(url: Any) -> str:
    if not isinstance(url, str) or not url:
        raise MatrixError(400, Errcode.INVALID_PARAM, "data.url is required for http pushers")
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.PALISADE.push.allow_http_gateways else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise MatrixError(400, Errcode.INVALID_PARAM, "data.url must be an https:// URL")
    if parts.path != NOTIFY_PATH or parts.query or parts.fragment or parts.username:
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          f"data.url must be a push gateway URL ending in {NOTIFY_PATH}")
    return url


def _check_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "data must be an object")
    check_gateway_url(data.get("url"))
    if "format" in data and data["format"] not in FORMATS:
        raise MatrixError(400, Errcode.INVALID_PARAM, "data.format must be 'event_id_only'")
    if len(orjson.dumps(data)) > MAX_DATA_BYTES:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"data exceeds {MAX_DATA_BYTES} bytes")
    return data


def do_set_pusher(user_id: str, device_id: str | None, body: dict[str, Any]) -> None:
    """Spec POST /pushers/set: `kind` null deletes the (app_id, pushkey) pusher; otherwise it
    is created or updated, and unless `append` is true the same (app_id, pushkey) of other
    users is removed."""
    if "kind" not in body:
        raise MatrixError(400, Errcode.MISSING_PARAM, "Missing parameter: kind")
    app_id = _string(body, "app_id", MAX_APP_ID)
    pushkey = _string(body, "pushkey", MAX_PUSHKEY_BYTES, max_bytes=True)
    kind = body["kind"]
    if kind is None:
        with transaction.atomic():
            if push_store.delete_pusher(user_id, app_id, pushkey):
                record(AuditAction.PUSHER_REMOVED, actor=user_id, target=user_id,
                       details={"app_id": app_id, "reason": "removed by the user"})
        return
    if kind != "http":
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          "Only pushers of kind 'http' are supported (or null to delete)")
    fields = {
        "app_display_name": _string(body, "app_display_name", MAX_NAME),
        "device_display_name": _string(body, "device_display_name", MAX_NAME),
        "lang": _string(body, "lang", MAX_LANG),
    }
    profile_tag = body.get("profile_tag", "")
    if not isinstance(profile_tag, str) or len(profile_tag) > MAX_NAME:
        raise MatrixError(400, Errcode.BAD_JSON, "profile_tag must be a string")
    if "data" not in body:
        raise MatrixError(400, Errcode.MISSING_PARAM, "Missing parameter: data")
    data = _check_data(body["data"])
    append = body.get("append", False)
    if not isinstance(append, bool):
        raise MatrixError(400, Errcode.BAD_JSON, "append must be true or false")
    with transaction.atomic():
        created = push_store.upsert_pusher(
            user_id=user_id, device=push_store.device_pk(user_id, device_id), kind=kind,
            app_id=app_id, pushkey=pushkey, profile_tag=profile_tag, data=data,
            pushkey_ts=int(time.time()), **fields,
        )
        origin = gateway_origin(data["url"])
        record(AuditAction.PUSHER_SET, actor=user_id, target=user_id,
               details={"app_id": app_id, "gateway": origin, "created": created,
                        "format": data.get("format", "full")})
        if not append:
            for other in push_store.delete_others_pushers(user_id, app_id, pushkey):
                record(AuditAction.PUSHER_REMOVED, actor=user_id, target=other,
                       details={"app_id": app_id, "reason": "pushkey taken over (append=false)"})
