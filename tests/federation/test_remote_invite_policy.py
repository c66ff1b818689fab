"""Inviting users of other servers, and joining rooms on them, when the federation allow-list
refuses that server (REQUIREMENTS.md A_25534): 403 M_FORBIDDEN, one audited denial, nothing
created, and no connection attempted (the refused servers do not even resolve)."""

from __future__ import annotations

from urllib.parse import quote

import orjson
import pytest
from asgiref.sync import sync_to_async

from audit.models import AuditRecord
from homeserver.models import CurrentState, Room
from tests.accounts.conftest import amake_user, configure

pytestmark = pytest.mark.django_db(transaction=True)

OUTSIDER = "@mallory:outside.example"


@pytest.fixture
def allow_list(settings):
    configure(settings, federation={"allow_list": ("friend.example",)})


async def records_since(before: int) -> list[dict]:
    rows = await sync_to_async(list)(AuditRecord.objects.order_by("seq")[before:])
    return [{"actor": r.actor, "action": r.action,
             **(r.details if isinstance(r.details, dict) else orjson.loads(r.details))}
            for r in rows]


audit_count = sync_to_async(lambda: AuditRecord.objects.count())
room_count = sync_to_async(lambda: Room.objects.count())
member_rows = sync_to_async(lambda user: CurrentState.objects.filter(
    type="m.room.member", state_key=user).count())


async def session(api) -> tuple[str, str]:
    user = await amake_user()
    return user, (await api.login(user))["access_token"]


async def test_invite_to_a_refused_server_is_403_and_audited_once(api, allow_list):
    alice, token = await session(api)
    r = await api.call("POST", "/createRoom", {"preset": "private_chat"}, token=token)
    room_id = r.json()["room_id"]
    before = await audit_count()
    r = await api.call("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": OUTSIDER},
                       token=token)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert "outside.example" in r.json()["error"]
    records = await records_since(before)
    assert len(records) == 1
    assert (records[0]["actor"], records[0]["rule"], records[0]["hook"]) == (
        alice, "federation.allow_list", "invite")
    assert await member_rows(OUTSIDER) == 0


async def test_create_room_inviting_a_refused_server_creates_nothing(api, allow_list):
    alice, token = await session(api)
    rooms, before = await room_count(), await audit_count()
    r = await api.call("POST", "/createRoom", {"invite": [OUTSIDER]}, token=token)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert await room_count() == rooms
    records = await records_since(before)
    assert [(x["actor"], x["rule"]) for x in records] == [(alice, "federation.allow_list")]


async def test_join_through_refused_servers_only_is_403_and_audited(api, allow_list):
    alice, token = await session(api)
    room_id = "!elsewhere:outside.example"
    before = await audit_count()
    r = await api.call("POST", f"/join/{quote(room_id)}?server_name=denied.example", {},
                       token=token)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    records = await records_since(before)
    assert [(x["actor"], x["rule"], x["hook"]) for x in records] == [
        (alice, "federation.allow_list", "join_remote_room")]
    assert await room_count() == 0
    assert await member_rows(alice) == 0


async def test_unreachable_server_join_fails_without_state(api, settings):
    """Allowed but unreachable (no such host): the join fails cleanly, nothing is stored."""
    alice, token = await session(api)
    rooms = await room_count()
    r = await api.call("POST", f"/join/{quote('!nowhere:unreachable.invalid')}", {},
                       token=token)
    assert r.status_code == 502 and r.json()["errcode"] == "M_UNKNOWN"
    assert await room_count() == rooms
    assert await member_rows(alice) == 0
