"""POST /keys/upload, /keys/query and /keys/claim.

Spec: client-server API "Key management API" (keys.yaml) and "One-time and fallback keys".
Uploads are validated whole before anything is written (a bad key anywhere stores nothing).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.actions import AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, UserID
from homeserver.services.accounts.sessions import now_ms
from homeserver.services.accounts.user_ids import server_name
from homeserver.services.e2ee import key_format as fmt
from homeserver.services.e2ee import remote
from homeserver.services.e2ee.cross_signing_query import (
    add_cross_signing,
    visible_signatures,
    with_signatures,
)
from homeserver.services.e2ee.device_lists import mark_device_list_change
from homeserver.services.federation import edus_out
from homeserver.storage import e2ee_cross_signing as cs_store
from homeserver.storage import e2ee_keys as store

SIGNED_CURVE25519 = "signed_curve25519"
MAX_KEYS_PER_UPLOAD = 1000
MAX_QUERY_USERS = 1000


def key_counts(user_id: str, device_id: str) -> dict[str, int]:
    """One-time key counts, with signed_curve25519 always present (clients such as matrix-nio
    read it to decide how many keys to upload)."""
    counts = store.one_time_key_counts(user_id, device_id)
    counts.setdefault(SIGNED_CURVE25519, 0)
    return counts


def _keys_map(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fmt.bad_json(f"{name} must be an object")
    if len(value) > MAX_KEYS_PER_UPLOAD:
        raise fmt.invalid(f"At most {MAX_KEYS_PER_UPLOAD} {name} per request")
    return value


def do_upload_keys(user_id: str, device_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Spec: POST /keys/upload. Device keys must name the requester's user and device and be
    self-signed; signed one-time and fallback keys must be signed by the device key."""
    otks = _keys_map(body, "one_time_keys")
    fallbacks = _keys_map(body, "fallback_keys")
    stored = store.get_device_keys(user_id, device_id)
    new_keys = None
    ed25519 = stored.ed25519_key if stored else None
    if body.get("device_keys") is not None:
        ed25519, new_keys = fmt.check_device_keys(body["device_keys"], user_id, device_id)
    checked_otks = [fmt.check_key_object(n, v, user_id, device_id, ed25519, "one_time_keys")
                    for n, v in otks.items()]
    checked_fallbacks = [fmt.check_key_object(n, v, user_id, device_id, ed25519, "fallback_keys")
                         for n, v in fallbacks.items()]
    if len({a for a, _, _ in checked_fallbacks}) != len(checked_fallbacks):
        # Spec: fallback_keys: "There can only be at most one key per algorithm".
        raise fmt.invalid("At most one fallback key per algorithm")
    with transaction.atomic():
        existing = store.existing_one_time_keys(user_id, device_id,
                                                [(a, k) for a, k, _ in checked_otks])
        fresh = []
        for algorithm, key_id, key in checked_otks:
            old = existing.get((algorithm, key_id))
            if old is None:
                fresh.append((algorithm, key_id, key))
            elif old != key:
                raise fmt.invalid(f"One-time key {algorithm}:{key_id} already exists with "
                                  "different content")
        if new_keys is not None and (stored is None or stored.keys != new_keys):
            store.put_device_keys(user_id, device_id, ed25519 or "", new_keys, now_ms())
            if stored is not None and stored.ed25519_key != ed25519:
                # Signatures made over the old identity key no longer apply.
                cs_store.delete_signatures_on(user_id, [device_id])
            mark_device_list_change(user_id)
            edus_out.send_device_list_updates(user_id, [device_id])
            record(AuditAction.DEVICE_KEYS_UPLOADED, actor=user_id, target=user_id, details={
                "device_id": device_id,
                "key_ids": sorted(new_keys["keys"]),
                "replaced_identity_key": stored is not None and stored.ed25519_key != ed25519,
            })
        if fresh:
            store.add_one_time_keys(user_id, device_id, fresh)
        for algorithm, key_id, key in checked_fallbacks:
            store.put_fallback_key(user_id, device_id, algorithm, key_id, key)
        counts = key_counts(user_id, device_id)
    return {"one_time_key_counts": counts}


def split_users(requested: Any, what: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A {user_id: value} request map -> (local users' values, server -> remote users')."""
    if not isinstance(requested, dict):
        raise MatrixError(400, Errcode.BAD_JSON, f"{what} must be an object keyed by user ID")
    if len(requested) > MAX_QUERY_USERS:
        raise fmt.invalid(f"At most {MAX_QUERY_USERS} users per request")
    ours = server_name()
    local: dict[str, Any] = {}
    by_server: dict[str, dict[str, Any]] = {}
    for user_id, value in requested.items():
        try:
            parsed = UserID.parse_historical(user_id)
        except InvalidIdentifier:
            raise fmt.invalid(f"{what}: {user_id!r} is not a user ID") from None
        if str(parsed.server_name) == ours:
            local[user_id] = value
        else:
            by_server.setdefault(str(parsed.server_name), {})[user_id] = value
    return local, by_server


def query_keys(requester: str, body: dict[str, Any]) -> dict[str, Any]:
    """Spec: POST /keys/query: device keys (with `unsigned.device_display_name`) and
    cross-signing keys of local users; remote users through the federation seam."""
    local, by_server = split_users(body.get("device_keys"), "device_keys")
    for devices in [*local.values(), *(d for s in by_server.values() for d in s.values())]:
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise fmt.bad_json("device_keys values must be lists of device IDs")
    timeout = body.get("timeout", 10000)
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        raise fmt.bad_json("timeout must be an integer")
    keys = store.device_keys_for(local)
    names = store.devices_of(local)
    result: dict[str, Any] = {"device_keys": {}, "failures": {}, "master_keys": {},
                              "self_signing_keys": {}, "user_signing_keys": {}}
    targets = [(u, d) for u, devs in keys.items() for d in devs]
    cross = cs_store.cross_signing_keys(local)
    targets += [(u, k[cs_store.MASTER].public_key) for u, k in cross.items()
                if cs_store.MASTER in k]
    sigs = visible_signatures(requester, targets)
    for user_id, wanted in local.items():
        out = result["device_keys"][user_id] = {}
        for device_id, dk in keys.get(user_id, {}).items():
            if (wanted and device_id not in wanted) or device_id not in names.get(user_id, {}):
                continue
            obj = with_signatures(dk.keys, sigs.get((user_id, device_id), {}))
            name = names[user_id][device_id]
            obj["unsigned"] = {"device_display_name": name} if name else {}
            out[device_id] = obj
    add_cross_signing(requester, cross, sigs, result)
    if by_server:
        found = remote.backend.query_keys(requester, by_server, timeout)
        for section in ("device_keys", "master_keys", "self_signing_keys"):
            result[section].update(getattr(found, section))
        result["failures"].update(found.failures)
    return result


def do_claim_keys(requester: str, body: dict[str, Any]) -> dict[str, Any]:
    """Spec: POST /keys/claim: per requested device the oldest one-time key of the algorithm,
    else its fallback key (which is then marked used). Each one-time key is returned at most
    once, however many claims run at the same time (see storage.e2ee_keys)."""
    local, by_server = split_users(body.get("one_time_keys"), "one_time_keys")
    for devices in [*local.values(), *(d for s in by_server.values() for d in s.values())]:
        if not isinstance(devices, dict) or not all(
            isinstance(a, str) and a for a in devices.values()
        ):
            raise fmt.bad_json("one_time_keys values must map device IDs to algorithms")
    timeout = body.get("timeout", 10000)
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        raise fmt.bad_json("timeout must be an integer")
    claimed: dict[str, dict[str, Any]] = {}
    with transaction.atomic():
        for user_id, devices in local.items():
            for device_id, algorithm in devices.items():
                key = store.claim_one_time_key(user_id, device_id, algorithm)
                if key is None:
                    key = store.claim_fallback_key(user_id, device_id, algorithm)
                if key is not None:
                    key_id, obj = key
                    claimed.setdefault(user_id, {})[device_id] = {f"{algorithm}:{key_id}": obj}
    result: dict[str, Any] = {"one_time_keys": claimed, "failures": {}}
    if by_server:
        found = remote.backend.claim_keys(requester, by_server, timeout)
        claimed.update(found.one_time_keys)
        result["failures"].update(found.failures)
    return result
