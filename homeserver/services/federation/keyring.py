"""Remote servers' signing keys: fetched, verified, cached; and this server as a notary.

Spec: server-server API "Retrieving server keys" — "Publishing Keys" (GET /key/v2/server, the
response is self-signed), "Querying Keys Through Another Server" (notaries); rooms v5+ "Signing
key validity period" (a key is usable for events up to its valid_until_ts).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.signing import SignatureError, verify_signed_json
from homeserver.protocol.unpadded_base64 import decode_base64
from homeserver.services.federation import client
from homeserver.services.server_keys import server_key_document
from homeserver.storage import server_keys as key_store
from homeserver.storage.server_keys import StoredKey


class KeyNotFound(Exception):
    pass


def now_ms() -> int:
    return int(time.time() * 1000)


def check_key_document(doc: Any, server_name: str) -> list[StoredKey]:
    """Validate a /key/v2/server document of `server_name`: it must be signed by each of its own
    verify_keys (spec: "must be signed by all of the keys in verify_keys")."""
    if not isinstance(doc, dict) or doc.get("server_name") != server_name:
        raise SignatureError("key document is for another server")
    verify_keys = doc.get("verify_keys")
    if not isinstance(verify_keys, dict) or not verify_keys:
        raise SignatureError("key document has no verify_keys")
    valid_until = doc.get("valid_until_ts")
    if not isinstance(valid_until, int):
        raise SignatureError("key document has no valid_until_ts")
    text = encode_canonical_json(doc).decode()
    keys = []
    for key_id, entry in verify_keys.items():
        if not key_id.startswith("ed25519:") or not isinstance(entry, dict):
            continue
        raw = decode_base64(entry["key"])
        verify_signed_json(doc, server_name, key_id, raw)
        keys.append(StoredKey(server_name, key_id, entry["key"], valid_until, None, text))
    for key_id, entry in (doc.get("old_verify_keys") or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("expired_ts"), int):
            keys.append(StoredKey(server_name, key_id, entry["key"], entry["expired_ts"],
                                  entry["expired_ts"], text))
    return keys


async def fetch_keys_directly(server_name: str) -> list[StoredKey]:
    doc = await client.request("GET", server_name, "/_matrix/key/v2/server")
    keys = check_key_document(doc, server_name)
    for k in keys:
        await sync_to_async(key_store.store_key)(k, now_ms())
    return keys


async def get_verify_key(server_name: str, key_id: str, *, valid_at_ms: int | None = None) -> bytes:
    """The raw verify key `key_id` of `server_name`, usable at `valid_at_ms` (default: now)."""
    if server_name == settings.PALISADE.server_name:
        doc = server_key_document()
        entry = doc["verify_keys"].get(key_id) or doc["old_verify_keys"].get(key_id)
        if entry is None:
            raise KeyNotFound(f"{server_name} has no key {key_id}")
        return decode_base64(entry["key"])
    at = valid_at_ms if valid_at_ms is not None else now_ms()
    stored = await sync_to_async(key_store.get_key)(server_name, key_id)
    if stored is None or (stored.expired_ts is None and stored.valid_until_ts < at):
        try:
            await fetch_keys_directly(server_name)
        except (client.FederationError, SignatureError, ValueError, KeyError):
            pass
        stored = await sync_to_async(key_store.get_key)(server_name, key_id)
    if stored is None:
        raise KeyNotFound(f"Could not find key {key_id} of {server_name}")
    return decode_base64(stored.verify_key)


def notary_response(server_name: str, minimum_valid_until_ts: int | None) -> list[dict]:
    """Spec: POST/GET /_matrix/key/v2/query: the keys we hold for `server_name`, each document
    as the server signed it plus our own signature (we only vouch for what we fetched)."""
    from homeserver.protocol.signing import sign_json
    from homeserver.services.signing_keys import server_signing_key

    if server_name == settings.PALISADE.server_name:
        return [server_key_document()]
    out, seen = [], set()
    for k in key_store.keys_for(server_name):
        if k.key_json in seen:
            continue
        seen.add(k.key_json)
        doc = orjson.loads(k.key_json)
        if minimum_valid_until_ts and doc.get("valid_until_ts", 0) < minimum_valid_until_ts:
            continue
        out.append(sign_json(doc, settings.PALISADE.server_name, server_signing_key()))
    return out
