"""The event store and the single local-event path: rooms, state groups, extremities, locks."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connection

from audit.models import AuditRecord
from homeserver.models import CurrentState, Event, ForwardExtremity, StateGroup, StateGroupEntry
from homeserver.protocol.errors import MatrixError
from homeserver.protocol.hashing import check_content_hash, compute_event_id
from homeserver.protocol.redaction import redact_pdu
from homeserver.protocol.signing import public_key_base64, verify_signed_json
from homeserver.services.events.send import do_send_event
from homeserver.services.rooms.create import do_create_room
from homeserver.services.signing_keys import server_signing_key
from homeserver.storage import events as event_store
from homeserver.storage import state as state_store

ALICE = "@alice:localhost:8008"
BOB = "@bob:localhost:8008"

pytestmark = pytest.mark.django_db(transaction=True)


def _state_types(room_id: str) -> set[tuple[str, str]]:
    return set(state_store.current_state_ids(room_id))


def test_create_room_writes_spec_initial_state_and_audit():
    head = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    room_id = do_create_room(
        ALICE, {"preset": "private_chat", "name": "Ward 3", "topic": "handover", "invite": [BOB]}
    )
    state = _state_types(room_id)
    assert state == {
        ("m.room.create", ""),
        ("m.room.member", ALICE),
        ("m.room.power_levels", ""),
        ("m.room.join_rules", ""),
        ("m.room.history_visibility", ""),
        ("m.room.guest_access", ""),
        ("m.room.name", ""),
        ("m.room.topic", ""),
        ("m.room.member", BOB),
    }
    ids = state_store.current_state_ids(room_id)
    evs = event_store.get_events(ids.values())
    assert evs[ids[("m.room.join_rules", "")]].content == {"join_rule": "invite"}
    assert evs[ids[("m.room.member", BOB)]].content["membership"] == "invite"
    # One forward extremity: the last event; the chain is linear.
    assert ForwardExtremity.objects.filter(room_id=room_id).count() == 1
    actions = list(AuditRecord.objects.filter(seq__gt=head).values_list("action", flat=True))
    assert actions.count(2001) == 1  # ROOM_CREATED
    assert actions.count(3001) == 2  # creator join + invite


def test_stored_events_are_signed_hashed_and_ids_match():
    room_id = do_create_room(ALICE, {})
    key = server_signing_key()
    for row in Event.objects.filter(room_id=room_id):
        ev = event_store.get_event(row.event_id)
        assert check_content_hash(ev.pdu)
        assert compute_event_id(ev.pdu, ev.room_version) == ev.event_id
        verify_signed_json(
            redact_pdu(ev.pdu, ev.room_version), "localhost:8008", key.key_id, key.verify_key_bytes
        )
        assert public_key_base64(key)


def test_message_shares_state_group_state_event_adds_one_entry():
    room_id = do_create_room(ALICE, {})
    groups, entries = StateGroup.objects.count(), StateGroupEntry.objects.count()
    eid = do_send_event(
        room_id=room_id,
        sender=ALICE,
        event_type="m.room.message",
        content={"msgtype": "m.text", "body": "hi"},
    )
    assert (StateGroup.objects.count(), StateGroupEntry.objects.count()) == (groups, entries)
    topic = do_send_event(
        room_id=room_id,
        sender=ALICE,
        event_type="m.room.topic",
        content={"topic": "t"},
        state_key="",
    )
    assert StateGroup.objects.count() == groups + 1
    assert StateGroupEntry.objects.count() == entries + 1  # a delta, not a copy
    assert state_store.current_state_ids(room_id)[("m.room.topic", "")] == topic
    msg = event_store.get_event(eid)
    assert msg.prev_event_ids and msg.depth > 1


def test_room_v12_room_id_is_derived_from_create_event():
    room_id = do_create_room(ALICE, {"room_version": "12"})
    create_id = state_store.current_state_ids(room_id)[("m.room.create", "")]
    assert room_id == "!" + create_id[1:]
    create = event_store.get_event(create_id)
    assert "room_id" not in create.pdu
    pl_id = state_store.current_state_ids(room_id)[("m.room.power_levels", "")]
    pl = event_store.get_event(pl_id)
    assert create_id not in pl.auth_event_ids  # v12: the create event is implicit
    assert ALICE not in pl.content["users"]  # creators have infinite power instead


def test_send_with_same_txn_id_returns_same_event_and_stores_one():
    room_id = do_create_room(ALICE, {})
    kw = dict(
        room_id=room_id,
        sender=ALICE,
        event_type="m.room.message",
        content={"msgtype": "m.text", "body": "once"},
        device_id="DEV",
        txn_id="t1",
    )
    first = do_send_event(**kw)
    assert do_send_event(**kw) == first
    assert Event.objects.filter(room_id=room_id, type="m.room.message").count() == 1
    # Another device with the same txn id is a different transaction.
    assert do_send_event(**{**kw, "device_id": "OTHER"}) != first


def test_non_member_cannot_send_and_nothing_is_stored():
    room_id = do_create_room(ALICE, {})
    before = Event.objects.count()
    with pytest.raises(MatrixError) as e:
        do_send_event(
            room_id=room_id, sender=BOB, event_type="m.room.message", content={"body": "x"}
        )
    assert (e.value.status, e.value.errcode) == (403, "M_FORBIDDEN")
    assert Event.objects.count() == before


def test_auth_rules_refuse_power_level_change_by_unprivileged_member():
    room_id = do_create_room(ALICE, {"preset": "public_chat"})
    do_send_event(
        room_id=room_id,
        sender=BOB,
        event_type="m.room.member",
        state_key=BOB,
        content={"membership": "join"},
    )
    before = (Event.objects.count(), StateGroup.objects.count(), CurrentState.objects.count())
    with pytest.raises(MatrixError) as e:
        do_send_event(
            room_id=room_id,
            sender=BOB,
            event_type="m.room.power_levels",
            state_key="",
            content={"users": {BOB: 100}},
        )
    assert e.value.errcode == "M_FORBIDDEN"
    after = (Event.objects.count(), StateGroup.objects.count(), CurrentState.objects.count())
    assert after == before


def test_oversized_event_is_refused_with_m_too_large():
    room_id = do_create_room(ALICE, {})
    with pytest.raises(MatrixError) as e:
        do_send_event(
            room_id=room_id,
            sender=ALICE,
            event_type="m.room.message",
            content={"body": "x" * 70000},
        )
    assert (e.value.status, e.value.errcode) == (413, "M_TOO_LARGE")


def test_concurrent_sends_do_not_fork_the_room():
    """Eight threads (own DB connections) send into one room at once; the per-room lock makes
    each build on the last, so the DAG stays one linear chain with one forward extremity."""
    room_id = do_create_room(ALICE, {})
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(5):
                do_send_event(
                    room_id=room_id,
                    sender=ALICE,
                    event_type="m.room.message",
                    content={"body": f"{i}-{j}"},
                )
        except BaseException as e:
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert ForwardExtremity.objects.filter(room_id=room_id).count() == 1
    msgs = list(Event.objects.filter(room_id=room_id).order_by("stream_ordering"))
    for prev, cur in itertools.pairwise(msgs):
        assert event_store.get_event(cur.event_id).prev_event_ids == [prev.event_id]
        assert cur.depth == prev.depth + 1


def test_send_query_count_is_pinned(django_assert_max_num_queries):
    # BEGIN, membership check, lock+state group, extremities+depths, auth state, auth events,
    # stream position, event, edges, auth edges, extremities (delete+insert), txn, COMMIT,
    # and the in-transaction txn re-check: 15. A new query on the send path must be justified.
    # +2 (issue 5, push): the sender's read mark (spec "Marking notifications as read": sending
    # an event marks what precedes it as read) and the joined members with their push rules
    # (spec "Push Notifications" server behaviour: evaluated in the event's transaction so the
    # counts change in the same /sync). A room with others in it adds one bulk insert of the
    # notified users' rows.
    # +1 (issue 7, outbound queue): the servers with joined members, to queue the event for
    # them (spec server-server API "Transactions"). A federated room adds one bulk insert.
    room_id = do_create_room(ALICE, {})
    do_send_event(
        room_id=room_id,
        sender=ALICE,
        event_type="m.room.message",
        content={"body": "warm"},
        device_id="D",
        txn_id="w",
    )
    with django_assert_max_num_queries(18):
        do_send_event(
            room_id=room_id,
            sender=ALICE,
            event_type="m.room.message",
            content={"body": "counted"},
            device_id="D",
            txn_id="c",
        )
