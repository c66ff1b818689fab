"""Small helpers for the directory tests: sessions, rooms, and counting what got stored."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.conf import settings

from homeserver.models import AccountData, Event, OpenIdToken, Room, RoomAlias
from tests.accounts.conftest import amake_user, audit_head


def hs() -> str:
    return settings.PALISADE.server_name


def q(text: str) -> str:
    """Path-encode an identifier the way clients do (# and ! and : escaped)."""
    return quote(text, safe="")


async def session(api, localpart: str | None = None, *, admin: bool = False) -> tuple[str, str]:
    user = await amake_user(localpart, admin=admin)
    return user, (await api.login(user))["access_token"]


async def new_room(api, token: str, **body: Any) -> str:
    r = await api.call("POST", "/createRoom", body, token=token)
    assert r.status_code == 200, r.json()
    return r.json()["room_id"]


async def join(api, token: str, room_id: str) -> None:
    r = await api.call("POST", f"/join/{q(room_id)}", {}, token=token)
    assert r.status_code == 200, r.json()


async def state(api, token: str, room_id: str, etype: str, key: str = "") -> Any:
    path = f"/rooms/{q(room_id)}/state/{etype}" + (f"/{q(key)}" if key else "")
    return await api.call("GET", path, token=token)


async def put_state(api, token: str, room_id: str, etype: str, content: dict, key: str = ""):
    path = f"/rooms/{q(room_id)}/state/{etype}" + (f"/{q(key)}" if key else "")
    return await api.call("PUT", path, content, token=token)


def _snapshot() -> dict[str, int]:
    return {
        "events": Event.objects.count(),
        "rooms": Room.objects.count(),
        "aliases": RoomAlias.objects.count(),
        "public": Room.objects.filter(is_public=True).count(),
        "account_data": AccountData.objects.count(),
        "openid": OpenIdToken.objects.count(),
        "audit": audit_head(),
    }


snapshot = sync_to_async(_snapshot)


def assert_error(resp, status: int, errcode: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.content)
    assert resp.json()["errcode"] == errcode, resp.json()


def audited(records) -> list[tuple[int, str, str, dict]]:
    """(action, actor, target, details) of audit records, details parsed."""
    import json

    return [(r.action, r.actor, r.target, json.loads(r.details)) for r in records]
