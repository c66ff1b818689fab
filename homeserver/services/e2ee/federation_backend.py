"""End-to-end encryption for users of other servers, over federation (the `remote` seam).

Spec: client-server API POST /keys/query and /keys/claim ("failures": servers that could not be
reached; a server that answered but does not know a user or device is not a failure),
server-server API "End-to-End Encryption" (POST /user/keys/query, /user/keys/claim),
"Device Management" (GET /user/devices) and "Send-to-device messaging" (m.direct_to_device).

Each remote server is asked concurrently and the whole fan-out is bounded by the client's
`timeout`; a server that does not answer in time, refuses, or is not allowed by the federation
allow-list is reported in `failures` and never blocks the others. Device lists of users who
share a room with one of our users come from the device-list cache (services.federation.
device_cache), fetched with GET /user/devices when absent or stale; other users' keys are asked
for directly.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction

from homeserver.effects.federation_outbox import enqueue_edu
from homeserver.protocol.errors import MatrixError
from homeserver.services.e2ee.remote import NoFederation, RemoteKeysResult
from homeserver.services.federation import client, device_cache
from homeserver.storage.e2ee_cross_signing import MASTER, SELF_SIGNING
from homeserver.storage.federation_edus import CachedDeviceList

logger = logging.getLogger(__name__)

MIN_TIMEOUT_MS = 1_000
MAX_TIMEOUT_MS = 60_000


def _failure(e: BaseException) -> dict[str, Any]:
    if isinstance(e, client.FederationError):
        return {"status": e.status or 503, "message": str(e)}
    if isinstance(e, MatrixError):
        return {"status": e.status, "message": e.error}
    if isinstance(e, TimeoutError):
        return {"status": 504, "message": "Timed out"}
    return {"status": 503, "message": f"{type(e).__name__}: {e}"}


def _server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1] if ":" in user_id else ""


def _from_cache(cached: CachedDeviceList, wanted: list[str], out: RemoteKeysResult) -> None:
    """A cached list in /keys/query shape (device_display_name in `unsigned`)."""
    devices = out.device_keys.setdefault(cached.user_id, {})
    for device_id, device in cached.devices.items():
        if device.keys is None or (wanted and device_id not in wanted):
            continue
        obj = dict(device.keys)
        obj["unsigned"] = ({"device_display_name": device.display_name}
                           if device.display_name else {})
        devices[device_id] = obj
    if MASTER in cached.cross_signing:
        out.master_keys[cached.user_id] = cached.cross_signing[MASTER]
    if SELF_SIGNING in cached.cross_signing:
        out.self_signing_keys[cached.user_id] = cached.cross_signing[SELF_SIGNING]


def _merge_answer(server: str, answer: Any, users: set[str], out: RemoteKeysResult) -> None:
    """A remote /user/keys/query answer, limited to the users we asked that server about."""
    if not isinstance(answer, dict):
        return
    for section in ("device_keys", "master_keys", "self_signing_keys"):
        part = answer.get(section)
        if not isinstance(part, dict):
            continue
        target = getattr(out, section)
        for user_id, value in part.items():
            if user_id in users and _server_of(user_id) == server and isinstance(value, dict):
                target[user_id] = value


async def _query_server(server: str, users: dict[str, list[str]], timeout_s: float,
                        out: RemoteKeysResult) -> None:
    wanted = list(users)
    shared = await sync_to_async(device_cache.shares_room_here)(wanted)
    # Only lists of users who still share a room are kept current by updates.
    cached = await sync_to_async(device_cache.cached_lists)(sorted(shared))
    fetched = await asyncio.gather(
        *(device_cache.fetch_device_list(server, u, timeout_s)
          for u in sorted(shared - set(cached))),
        return_exceptions=True)
    for result in fetched:
        if isinstance(result, CachedDeviceList):
            cached[result.user_id] = result
        elif isinstance(result, BaseException):
            logger.info("GET /user/devices on %s failed: %s", server, result)
    for user_id, lst in cached.items():
        _from_cache(lst, users[user_id], out)
    rest = {u: users[u] for u in wanted if u not in cached}
    if unshared := [u for u in wanted if u not in shared]:
        await sync_to_async(device_cache.forget_unshared)(unshared)
    if rest:
        answer = await client.request("POST", server, "/_matrix/federation/v1/user/keys/query",
                                      content={"device_keys": rest}, timeout=timeout_s)
        _merge_answer(server, answer, set(rest), out)


async def _claim_server(server: str, users: dict[str, dict[str, str]], timeout_s: float,
                        out: RemoteKeysResult) -> None:
    answer = await client.request("POST", server, "/_matrix/federation/v1/user/keys/claim",
                                  content={"one_time_keys": users}, timeout=timeout_s)
    part = answer.get("one_time_keys") if isinstance(answer, dict) else None
    if not isinstance(part, dict):
        return
    for user_id, devices in part.items():
        if user_id not in users or not isinstance(devices, dict):
            continue
        got = {d: k for d, k in devices.items() if d in users[user_id] and isinstance(k, dict)}
        if got:
            out.one_time_keys[user_id] = got


async def _fan_out(by_server: dict[str, Any], timeout_ms: int, work) -> RemoteKeysResult:
    out = RemoteKeysResult()
    timeout_s = min(max(timeout_ms, MIN_TIMEOUT_MS), MAX_TIMEOUT_MS) / 1000

    async def one(server: str, users: Any) -> None:
        partial = RemoteKeysResult()
        try:
            await asyncio.wait_for(work(server, users, timeout_s, partial), timeout_s)
        except Exception as e:  # each server fails on its own
            logger.info("E2EE query to %s failed: %s", server, e)
            out.failures[server] = _failure(e)
            return
        for section in ("device_keys", "master_keys", "self_signing_keys", "one_time_keys"):
            getattr(out, section).update(getattr(partial, section))

    await asyncio.gather(*(one(s, u) for s, u in sorted(by_server.items())))
    return out


class FederationE2EE:
    """The `remote.backend` once federation is on (set in HomeserverConfig.ready)."""

    def query_keys(self, requester: str, by_server: dict[str, dict[str, list[str]]],
                   timeout_ms: int) -> RemoteKeysResult:
        if not settings.PALISADE.federation.enabled:
            return NoFederation().query_keys(requester, by_server, timeout_ms)
        return async_to_sync(_fan_out)(by_server, timeout_ms, _query_server)

    def claim_keys(self, requester: str, by_server: dict[str, dict[str, dict[str, str]]],
                   timeout_ms: int) -> RemoteKeysResult:
        if not settings.PALISADE.federation.enabled:
            return NoFederation().claim_keys(requester, by_server, timeout_ms)
        return async_to_sync(_fan_out)(by_server, timeout_ms, _claim_server)

    def send_to_device(self, sender: str, event_type: str, message_id: str,
                       by_server: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Spec "Send-to-device messaging": one m.direct_to_device EDU per destination, with
        the same message_id (called after the sender's transaction committed)."""
        if not settings.PALISADE.federation.enabled:
            NoFederation().send_to_device(sender, event_type, message_id, by_server)
            return
        with transaction.atomic():
            for server, messages in sorted(by_server.items()):
                enqueue_edu("m.direct_to_device", {
                    "sender": sender, "type": event_type, "message_id": message_id,
                    "messages": messages,
                }, [server])
