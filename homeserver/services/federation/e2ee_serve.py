"""Answering other servers' end-to-end encryption requests about our users.

Spec: server-server API "Device Management" (GET /user/devices/{userId}) and "End-to-End
Encryption" (POST /user/keys/query, POST /user/keys/claim). Only our own users are answered:
GET /user/devices for another server's user is 403 M_FORBIDDEN ("Must be a user local to the
receiving homeserver"); users of other servers in a query or claim are left out of the answer,
as unknown users are. A requesting server sees the signatures a user made on their own keys,
never those of other users' user-signing keys (spec client-server "Key and signature
security"), and never user-signing keys.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.services.e2ee import device_keys
from homeserver.storage import e2ee_keys as key_store
from homeserver.storage import federation_edus as store

# Nobody: only signatures a user made on their own keys are visible (see module docstring).
NO_REQUESTER = ""


def _local_only(requested: Any, what: str) -> dict[str, Any]:
    if not isinstance(requested, dict):
        raise MatrixError(400, Errcode.BAD_JSON, f"{what} must be an object keyed by user ID")
    if len(requested) > device_keys.MAX_QUERY_USERS:
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          f"At most {device_keys.MAX_QUERY_USERS} users per request")
    ours = settings.PALISADE.server_name
    out = {}
    for user_id, value in requested.items():
        try:
            parsed = UserID.parse_historical(user_id)
        except InvalidIdentifier:
            raise MatrixError(400, Errcode.INVALID_PARAM,
                              f"{what}: {user_id!r} is not a user ID") from None
        if str(parsed.server_name) == ours:
            out[user_id] = value
    return out


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MatrixError(400, Errcode.NOT_JSON, "Request body must be a JSON object")
    return body


def query_keys(origin: str, body: Any) -> dict[str, Any]:
    """POST /user/keys/query {device_keys: {user_id: [device_id, ...]}} (empty list: all)."""
    local = _local_only(_body(body).get("device_keys"), "device_keys")
    result = device_keys.query_keys(NO_REQUESTER, {"device_keys": local})
    return {k: result[k] for k in ("device_keys", "master_keys", "self_signing_keys")}


def claim_keys(origin: str, body: Any) -> dict[str, Any]:
    """POST /user/keys/claim {one_time_keys: {user_id: {device_id: algorithm}}}."""
    local = _local_only(_body(body).get("one_time_keys"), "one_time_keys")
    result = device_keys.do_claim_keys(NO_REQUESTER, {"one_time_keys": local})
    return {"one_time_keys": result["one_time_keys"]}


def user_devices(origin: str, user_id: str) -> dict[str, Any]:
    """GET /user/devices/{userId}: every device (with its keys when it has uploaded them) and
    the cross-signing keys, with the stream_id of the last m.device_list_update we sent."""
    try:
        parsed = UserID.parse_historical(user_id)
    except InvalidIdentifier:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"{user_id!r} is not a user ID") from None
    if str(parsed.server_name) != settings.PALISADE.server_name:
        raise MatrixError(403, Errcode.FORBIDDEN, f"{user_id} is not a user of this server")
    result = device_keys.query_keys(NO_REQUESTER, {"device_keys": {user_id: []}})
    with_keys = result["device_keys"].get(user_id, {})
    names = key_store.devices_of([user_id]).get(user_id, {})
    devices = []
    for device_id in sorted(names):
        entry: dict[str, Any] = {"device_id": device_id}
        if device_id in with_keys:
            entry["keys"] = {k: v for k, v in with_keys[device_id].items() if k != "unsigned"}
        if names[device_id]:
            entry["device_display_name"] = names[device_id]
        devices.append(entry)
    out: dict[str, Any] = {"user_id": user_id, "stream_id": store.outbound_stream_id(user_id) or 0,
                           "devices": devices}
    if user_id in result["master_keys"]:
        out["master_key"] = result["master_keys"][user_id]
    if user_id in result["self_signing_keys"]:
        out["self_signing_key"] = result["self_signing_keys"][user_id]
    return out
