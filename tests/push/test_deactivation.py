"""Deactivation and erasure take issue 5's per-account data with them: pushers, presence and
typing always; push rules, notifications, receipts and read marks on erasure."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from homeserver.models import (
    EventPushAction,
    Presence,
    Pusher,
    PushRuleSet,
    ReadMark,
    Receipt,
    TypingState,
)
from tests.accounts.test_account import uia
from tests.ephemeral.chat import ephemeral, room_with, send, session, sync

pytestmark = pytest.mark.django_db(transaction=True)

MODELS = (Pusher, Presence, PushRuleSet, EventPushAction, Receipt, ReadMark)


@sync_to_async
def rows_of(user_id: str) -> dict[str, int]:
    return {m.__name__: m.objects.filter(user_id=user_id).count() for m in MODELS}


@pytest.mark.parametrize("erase", [False, True])
async def test_deactivation_removes_push_and_ephemeral_data(api, erase):
    _alice, atok = await session(api)
    bob, btok = await session(api)
    room = await room_with(api, atok, (bob, btok))
    ev = await send(api, atok, room, "for bob")
    await send(api, atok, room, "unread")
    await api.call("POST", "/pushers/set", {
        "kind": "http", "app_id": "a", "pushkey": "k", "app_display_name": "A",
        "device_display_name": "D", "lang": "en",
        "data": {"url": "https://push.example.org/_matrix/push/v1/notify"}}, token=btok)
    await api.call("PUT", f"/pushrules/global/room/{room}", {"actions": []}, token=btok)
    await api.call("POST", f"/rooms/{room}/receipt/m.read/{ev}", {}, token=btok)
    await api.call("PUT", f"/presence/{bob}/status", {"presence": "online"}, token=btok)
    await api.call("PUT", f"/rooms/{room}/typing/{bob}", {"typing": True, "timeout": 60000},
                   token=btok)
    assert all((await rows_of(bob)).values())
    since = (await sync(api, atok))["next_batch"]
    r = await uia(api, "POST", "/account/deactivate", {"erase": erase}, btok, bob)
    assert r.status_code == 200, r.json()
    left = await rows_of(bob)
    assert (left["Pusher"], left["Presence"]) == (0, 0)
    kept = 0 if erase else 1
    assert (left["PushRuleSet"], left["Receipt"]) == (kept, kept)
    assert left["ReadMark"] == (0 if erase else 2)  # his join ("main") and his receipt ("")
    assert left["EventPushAction"] == (0 if erase else 3)  # his invite and two messages
    typing_row = await sync_to_async(TypingState.objects.get)(user_id=bob)
    assert typing_row.expires_ts == 0
    typing = ephemeral(await sync(api, atok, since), room, "m.typing")
    assert typing == [{"type": "m.typing", "content": {"user_ids": []}}]
