"""Small helpers the ephemeral and push tests share: users with sessions, rooms with members,
messages and syncs, all through the HTTP API."""

from __future__ import annotations

import itertools
from typing import Any

from asgiref.sync import sync_to_async

from homeserver.models import StreamCounter
from tests.accounts.conftest import amake_user

_txn = itertools.count()


async def session(api) -> tuple[str, str]:
    user = await amake_user()
    return user, (await api.login(user))["access_token"]


async def room_with(api, owner_tok: str, *members: tuple[str, str], **body: Any) -> str:
    """A private room created by the owner that every (user, token) in `members` joined."""
    r = await api.call("POST", "/createRoom",
                       {"invite": [u for u, _ in members], **body}, token=owner_tok)
    assert r.status_code == 200, r.json()
    room = r.json()["room_id"]
    for _, tok in members:
        j = await api.call("POST", f"/rooms/{room}/join", {}, token=tok)
        assert j.status_code == 200, j.json()
    return room


async def send(api, tok: str, room: str, body: str = "hello", **content: Any) -> str:
    r = await api.call("PUT", f"/rooms/{room}/send/m.room.message/t{next(_txn)}",
                       {"msgtype": "m.text", "body": body, **content}, token=tok)
    assert r.status_code == 200, r.json()
    return r.json()["event_id"]


async def sync(api, tok: str, since: str | None = None, **params: Any) -> dict:
    q = "&".join(f"{k}={v}" for k, v in params.items())
    url = "/sync?" + (f"since={since}&" if since else "") + q
    r = await api.call("GET", url, token=tok)
    assert r.status_code == 200, r.json()
    return r.json()


def ephemeral(resp: dict, room: str, etype: str) -> list[dict]:
    entry = resp["rooms"]["join"].get(room)
    return [e for e in entry["ephemeral"]["events"] if e["type"] == etype] if entry else []


def counts(resp: dict, room: str) -> tuple[int, int] | None:
    entry = resp["rooms"]["join"].get(room)
    if entry is None:
        return None
    n = entry["unread_notifications"]
    return n["notification_count"], n["highlight_count"]


stream_position = sync_to_async(
    lambda: StreamCounter.objects.filter(name="main").values_list("value", flat=True).first()
)
