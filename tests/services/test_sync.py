"""/sync assembly: initial, incremental, limited timelines, invites and leaves — and the
Zulip-style consistency check: an initial sync plus every incremental sync since must equal a
fresh initial sync."""

from __future__ import annotations

import pytest

from homeserver.services.events.redact import do_redact
from homeserver.services.events.send import do_send_event
from homeserver.services.rooms import membership
from homeserver.services.rooms.create import do_create_room
from homeserver.services.sync.filters import parse_sync_filter
from homeserver.services.sync.sync import SyncRequest, build_sync

ALICE = "@alice:localhost:8008"
BOB = "@bob:localhost:8008"
CAROL = "@carol:localhost:8008"

pytestmark = pytest.mark.django_db(transaction=True)


def sync(user: str, since: int | None = None, limit: int = 100, lazy: bool = False) -> dict:
    flt = parse_sync_filter({"room": {"timeline": {"limit": limit},
                                      "state": {"lazy_load_members": lazy}}})
    return build_sync(SyncRequest(user_id=user, device_id="D", since=since, filter=flt,
                                  full_state=False))[0]


def pos(resp: dict) -> int:
    return int(resp["next_batch"][1:])


def msg(room: str, sender: str, body: str) -> str:
    return do_send_event(room_id=room, sender=sender, event_type="m.room.message",
                         content={"msgtype": "m.text", "body": body})


class ClientModel:
    """What a client holds after applying sync responses: per joined room its state and every
    timeline event id; pending invites."""

    def __init__(self) -> None:
        self.joined: dict[str, dict[tuple[str, str], str]] = {}
        self.timeline: dict[str, list[str]] = {}
        self.invites: set[str] = set()

    def apply(self, resp: dict) -> None:
        rooms = resp["rooms"]
        for room_id, r in rooms["join"].items():
            state = self.joined.setdefault(room_id, {})
            for ev in r["state"]["events"] + [e for e in r["timeline"]["events"]
                                              if "state_key" in e]:
                state[(ev["type"], ev["state_key"])] = ev["event_id"]
            self.timeline.setdefault(room_id, []).extend(
                e["event_id"] for e in r["timeline"]["events"])
            self.invites.discard(room_id)
        for room_id in rooms["invite"]:
            self.invites.add(room_id)
        for room_id in rooms["leave"]:
            self.joined.pop(room_id, None)
            self.timeline.pop(room_id, None)
            self.invites.discard(room_id)


def test_initial_sync_shows_rooms_state_and_timeline():
    room = do_create_room(ALICE, {"name": "Ward 7"})
    eid = msg(room, ALICE, "hello")
    resp = sync(ALICE)
    r = resp["rooms"]["join"][room]
    assert r["timeline"]["events"][-1]["event_id"] == eid
    assert r["timeline"]["limited"] is False
    names = [e for e in r["state"]["events"] + r["timeline"]["events"]
             if e["type"] == "m.room.name"]
    assert names and names[0]["content"] == {"name": "Ward 7"}
    assert resp["next_batch"].startswith("s")


def test_incremental_sync_returns_only_new_events_and_nothing_when_idle():
    room = do_create_room(ALICE, {})
    first = sync(ALICE)
    assert sync(ALICE, since=pos(first))["rooms"]["join"] == {}
    eid = msg(room, ALICE, "new")
    r = sync(ALICE, since=pos(first))["rooms"]["join"][room]
    assert [e["event_id"] for e in r["timeline"]["events"]] == [eid]
    assert r["state"]["events"] == []


def test_limited_incremental_sync_carries_state_changes_before_the_timeline():
    room = do_create_room(ALICE, {})
    since = pos(sync(ALICE))
    topic = do_send_event(room_id=room, sender=ALICE, event_type="m.room.topic",
                          content={"topic": "changed"}, state_key="")
    for i in range(5):
        msg(room, ALICE, f"m{i}")
    r = sync(ALICE, since=since, limit=2)["rooms"]["join"][room]
    assert r["timeline"]["limited"] is True
    assert len(r["timeline"]["events"]) == 2
    assert [e["event_id"] for e in r["state"]["events"]] == [topic]
    assert r["timeline"]["prev_batch"].startswith("s")


def test_invite_then_join_then_leave_moves_between_sections():
    room = do_create_room(ALICE, {"invite": [BOB]})
    resp = sync(BOB)
    invite = resp["rooms"]["invite"][room]["invite_state"]["events"]
    assert {"m.room.create", "m.room.member"} <= {e["type"] for e in invite}
    since = pos(resp)
    membership.do_join(BOB, room)
    resp = sync(BOB, since=since, limit=1)
    assert room in resp["rooms"]["join"] and room not in resp["rooms"]["invite"]
    # A fresh join is sent like an initial sync: the full state before the latest event.
    joined = resp["rooms"]["join"][room]
    state_types = {e["type"] for e in joined["state"]["events"]}
    assert {"m.room.create", "m.room.power_levels", "m.room.join_rules"} <= state_types
    assert joined["timeline"]["limited"] is True
    since = pos(resp)
    membership.do_leave(BOB, room)
    resp = sync(BOB, since=since)
    left = resp["rooms"]["leave"][room]
    assert left["timeline"]["events"][-1]["content"]["membership"] == "leave"
    assert room not in resp["rooms"]["join"]


def test_lazy_loading_members_sends_only_timeline_senders():
    room = do_create_room(ALICE, {"preset": "public_chat"})
    for user in (BOB, CAROL):
        membership.do_join(user, room)
    for i in range(3):
        msg(room, ALICE, f"a{i}")
    r = sync(BOB, limit=2, lazy=True)["rooms"]["join"][room]
    members = {e["state_key"] for e in r["state"]["events"] if e["type"] == "m.room.member"}
    assert CAROL not in members and ALICE in members


def test_redacted_event_is_pruned_in_sync():
    room = do_create_room(ALICE, {})
    eid = msg(room, ALICE, "secret patient name")
    do_redact(room_id=room, sender=ALICE, event_id=eid, reason="wrong room", device_id=None,
              txn_id=None)
    events = sync(ALICE)["rooms"]["join"][room]["timeline"]["events"]
    redacted = next(e for e in events if e["event_id"] == eid)
    assert redacted["content"] == {}
    assert redacted["unsigned"]["redacted_because"]["content"] == {"reason": "wrong room"}


def test_transaction_id_goes_only_to_the_sending_device():
    room = do_create_room(ALICE, {})
    eid = do_send_event(room_id=room, sender=ALICE, event_type="m.room.message",
                        content={"body": "x"}, device_id="D", txn_id="txn-1")
    flt = parse_sync_filter(None)
    mine = build_sync(SyncRequest(ALICE, "D", None, flt, False))[0]
    other = build_sync(SyncRequest(ALICE, "OTHER", None, flt, False))[0]

    def unsigned(resp):
        evs = resp["rooms"]["join"][room]["timeline"]["events"]
        return next(e for e in evs if e["event_id"] == eid)["unsigned"]

    assert unsigned(mine)["transaction_id"] == "txn-1"
    assert "transaction_id" not in unsigned(other)


@pytest.mark.parametrize("limit", [100, 2])
def test_incremental_syncs_applied_to_initial_equal_a_fresh_initial_sync(limit):
    """Zulip's verify_action idea: after every action, the client's model built from the first
    initial sync plus all incremental syncs must match a fresh initial sync (state exactly;
    with limit=2 the limited path must still converge on state)."""
    model = ClientModel()
    first = sync(BOB, limit=limit)
    model.apply(first)
    since = pos(first)
    room_a = do_create_room(ALICE, {"preset": "public_chat", "name": "A"})
    room_b = do_create_room(ALICE, {"invite": [BOB], "topic": "b"})
    actions = [
        lambda: membership.do_join(BOB, room_a),
        lambda: msg(room_a, ALICE, "hi bob"),
        lambda: do_send_event(room_id=room_a, sender=ALICE, event_type="m.room.topic",
                              content={"topic": "t1"}, state_key=""),
        lambda: [msg(room_a, BOB, f"burst {i}") for i in range(4)],
        lambda: membership.do_join(BOB, room_b),
        lambda: membership.do_join(CAROL, room_a),
        lambda: do_send_event(room_id=room_a, sender=ALICE, event_type="m.room.name",
                              content={"name": "A2"}, state_key=""),
        lambda: membership.do_leave(BOB, room_b),
        lambda: do_create_room(CAROL, {"invite": [BOB]}),
        lambda: membership.do_kick(ALICE, room_a, CAROL, "bye"),
    ]
    for action in actions:
        action()
        inc = sync(BOB, since=since, limit=limit)
        model.apply(inc)
        since = pos(inc)
        fresh = ClientModel()
        fresh.apply(sync(BOB, limit=limit))
        assert model.joined == fresh.joined
        assert model.invites == fresh.invites
        if limit == 100:
            assert model.timeline == fresh.timeline


def test_account_data_reaches_sync_global_and_per_room():
    from audit.actions import ActorType
    from homeserver.services.accounts.account_data import do_put_account_data
    from homeserver.services.accounts.register import create_user

    create_user("alice", password=None, actor="tests", actor_type=ActorType.SYSTEM,
                method="tests")
    room = do_create_room(ALICE, {})
    since = pos(sync(ALICE))
    do_put_account_data(ALICE, ALICE, "m.direct", {BOB: [room]})
    do_put_account_data(ALICE, ALICE, "m.tag.example", {"x": 1}, room_id=room)
    resp = sync(ALICE, since=since)
    assert {"type": "m.direct", "content": {BOB: [room]}} in resp["account_data"]["events"]
    r = resp["rooms"]["join"][room]
    assert r["account_data"]["events"] == [{"type": "m.tag.example", "content": {"x": 1}}]
    assert r["timeline"]["events"] == []
    # Nothing new afterwards.
    assert sync(ALICE, since=pos(resp))["account_data"]["events"] == []


def test_incremental_sync_query_count_is_pinned(django_assert_max_num_queries):
    room = do_create_room(ALICE, {})
    for _ in range(3):
        do_create_room(ALICE, {})  # idle rooms must not cost queries per room
    since = pos(sync(ALICE))
    msg(room, ALICE, "warm the per-process caches (room versions, state groups)")
    since = pos(sync(ALICE, since=since))
    msg(room, ALICE, "one new message")
    # Stream position, memberships, rooms with news, then per active room: timeline,
    # visibility state, unread count (1), and once: transaction ids, account data (8); then
    # the section providers (services/sync/providers.py): e2ee 7, and issue 5's typing,
    # receipts and presence, each one query joined with the user's memberships (3).
    with django_assert_max_num_queries(18):
        resp = sync(ALICE, since=since)
    assert list(resp["rooms"]["join"]) == [room]
