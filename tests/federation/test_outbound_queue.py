"""The durable outbound queue: what is queued for whom, in which transactions it goes out, and
what happens when the receiver fails (spec: server-server API "Transactions"; REQUIREMENTS.md
A_25534).

Delivery runs the way the configuration says: embedded (no Redis) on a thread of this process;
with PALISADE_REDIS_URL set, as Celery tasks worked by a real `celery -A homeserver worker`
subprocess on this test database. The remote server is the recording receiver
(tests/federation/outbound_receiver.py, a test double: it must be able to fail on demand).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import transaction

from audit.models import AuditRecord
from homeserver.effects.federation_outbox import enqueue_edu, enqueue_pdu
from homeserver.models import OutboundItem
from homeserver.protocol.event_builder import build_event
from homeserver.protocol.signing import generate_signing_key
from homeserver.services.events.send import do_send_event
from homeserver.services.rooms.create import do_create_room
from homeserver.services.rooms.membership import do_ban, do_kick
from homeserver.storage import events as event_store
from homeserver.storage import federation_outbox as outbox_store
from homeserver.storage import rooms as room_store
from homeserver.storage import state as state_store
from homeserver.storage.stream import next_stream_positions
from tests.accounts.conftest import configure, server_name
from tests.federation.outbound_receiver import start_receiver

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = f"palisade-test-outbound-{uuid.uuid4().hex[:10]}"
FED = {"verify_tls": False, "allow_private_addresses": True, "retry_initial_seconds": 0.2,
       "retry_max_seconds": 1.0, "celery_queue": QUEUE, "request_timeout_seconds": 10}
LATER_DENIED = "denied-later.example"


@pytest.fixture(scope="module")
def outbound_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """With Redis: a real Celery worker on this test database, configured like the test process
    (plus a deny-list entry the drop test relies on). Embedded: None (a thread delivers)."""
    from django.conf import settings

    if settings.CELERY_TASK_ALWAYS_EAGER:
        yield None
        return
    from tests.push.conftest import start_worker, stop_worker, worker_env

    base = os.environ["PALISADE_DATABASE_URL"]
    test_db = settings.DATABASES["default"]["NAME"]
    url = urlunsplit(urlsplit(base)._replace(path=f"/{test_db}"))
    env = worker_env(url, settings.PALISADE.redis.url, QUEUE, **{
        "PALISADE__FEDERATION__" + k.upper(): str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in FED.items()}, PALISADE__FEDERATION__DENY_LIST=f'["{LATER_DENIED}"]')
    proc = start_worker(env, QUEUE, tmp_path_factory.mktemp("outbound-worker") / "worker.log")
    yield proc
    stop_worker(proc)


@pytest.fixture(autouse=True)
def federation_settings(settings, outbound_worker):
    configure(settings, federation=FED)


@pytest.fixture
def receiver():
    r = start_receiver()
    yield r
    r.stop()


def alice() -> str:
    return f"@alice:{server_name()}"


def room_with_remote_member(*remote_servers: str) -> str:
    """A public room of alice's with one joined member per remote server."""
    room_id = do_create_room(alice(), {"preset": "public_chat"})
    for i, server in enumerate(remote_servers):
        remote_join(room_id, f"@member{i}:{server}")
    return room_id


def remote_join(room_id: str, user_id: str) -> None:
    """PRECONDITION ONLY: a remote user's join, signed by a key of their server, stored the way
    an accepted federated join leaves it (event, state group, current state). Joins over
    federation are another change; the outbound path only reads what they leave behind."""
    server = user_id.split(":", 1)[1]
    with transaction.atomic():
        group = room_store.lock_room(room_id)
        prev = event_store.forward_extremities_with_depth(room_id)
        state = state_store.current_state_ids(room_id)
        auth = [state[k] for k in (("m.room.create", ""), ("m.room.power_levels", ""),
                                   ("m.room.join_rules", "")) if k in state]
        event = build_event(
            room_version=room_store.room_version(room_id), room_id=room_id, sender=user_id,
            event_type="m.room.member", content={"membership": "join"}, state_key=user_id,
            prev_events=list(prev), auth_events=auth, depth=max(prev.values()) + 1,
            origin_server_ts=int(time.time() * 1000), server_name=server,
            signing_key=generate_signing_key())
        delta = {("m.room.member", user_id): event.event_id}
        group = state_store.create_state_group(room_id, group, delta)
        room_store.set_current_state_group(room_id, group)
        position = next_stream_positions()
        event_store.persist_event(event, stream_ordering=position, state_group=group)
        event_store.replace_forward_extremities(room_id, event.prev_event_ids, event.event_id)
        state_store.apply_current_state_delta(room_id, delta, position, {user_id: "join"})


def send(room_id: str, body: str) -> str:
    return do_send_event(room_id=room_id, sender=alice(), event_type="m.room.message",
                         content={"msgtype": "m.text", "body": body})


def bodies(pdus: list[dict]) -> list[str]:
    return [p["content"].get("body") for p in pdus if p["type"] == "m.room.message"]


def test_messages_reach_every_remote_server_in_the_room_signed_by_us(receiver):
    room_id = room_with_remote_member(receiver.server_name)
    event_id = send(room_id, "hello over federation")
    receiver.wait_for(lambda: bodies(receiver.pdus()) == ["hello over federation"],
                      what="the message")
    (attempt,) = receiver.attempts
    assert attempt.body["origin"] == server_name()
    assert attempt.authorization.startswith("X-Matrix ")
    assert f'origin="{server_name()}"' in attempt.authorization
    assert f'destination="{receiver.server_name}"' in attempt.authorization
    (pdu,) = attempt.body["pdus"]
    assert pdu == event_store.get_events([event_id])[event_id].pdu  # the signed PDU, as stored
    # Delivered rows are gone; the destination is healthy.
    receiver.wait_for(lambda: not outbox_store.has_items(receiver.server_name), what="cleanup")
    state = outbox_store.destination_state(receiver.server_name)
    assert state.failures == 0 and state.last_success_ts and state.queued == 0


def test_120_pdus_go_in_transactions_of_at_most_50_in_order(receiver):
    room_id = room_with_remote_member(receiver.server_name)
    with transaction.atomic():  # one commit: all 120 are queued before the sender starts
        for i in range(120):
            send(room_id, f"m{i}")
    receiver.wait_for(lambda: len(receiver.pdus()) == 120, what="120 PDUs")
    assert [len(a.body["pdus"]) for a in receiver.attempts] == [50, 50, 20]
    assert bodies(receiver.pdus()) == [f"m{i}" for i in range(120)]
    assert len({a.txn_id for a in receiver.attempts}) == 3


def test_edus_go_at_most_100_per_transaction_in_queue_order(receiver):
    with transaction.atomic():
        for i in range(130):
            enqueue_edu("m.typing", {"room_id": "!r:x", "user_id": f"@u{i}:{server_name()}",
                                     "typing": True}, [receiver.server_name])
    receiver.wait_for(lambda: len(receiver.edus()) == 130, what="130 EDUs")
    assert [len(a.body.get("edus", [])) for a in receiver.attempts] == [100, 30]
    assert [e["content"]["user_id"].split(":")[0] for e in receiver.edus()] == \
        [f"@u{i}" for i in range(130)]
    assert all(a.body["pdus"] == [] for a in receiver.attempts)


def test_failed_transaction_is_retried_with_backoff_under_the_same_txn_id(receiver):
    room_id = room_with_remote_member(receiver.server_name)
    receiver.fail_next = 2
    send(room_id, "must arrive")
    receiver.wait_for(lambda: bodies(receiver.pdus()) == ["must arrive"], what="the retry")
    first, second, third = receiver.attempts
    assert [a.status for a in receiver.attempts] == [500, 500, 200]
    assert first.txn_id == second.txn_id == third.txn_id
    assert first.body["pdus"] == third.body["pdus"]
    # Exponential backoff: retry_initial_seconds, then twice that.
    assert second.at - first.at >= 0.2 * 0.9
    assert third.at - second.at >= 0.4 * 0.9
    receiver.wait_for(lambda: outbox_store.destination_state(receiver.server_name).failures == 0,
                      what="the destination to recover")
    assert outbox_store.destination_state(receiver.server_name).last_error == ""


def test_rows_stay_queued_while_the_receiver_fails_and_record_the_error(receiver):
    room_id = room_with_remote_member(receiver.server_name)
    receiver.fail_next = 10_000
    send(room_id, "waits")
    receiver.wait_for(lambda: len(receiver.attempts) >= 3, what="three attempts")
    state = outbox_store.destination_state(receiver.server_name)
    assert state.queued == 1 and state.failures >= 2 and "HTTP 500" in state.last_error
    assert state.backoff_ms <= 1000  # capped at retry_max_seconds
    receiver.fail_next = 0
    receiver.wait_for(lambda: bodies(receiver.pdus()) == ["waits"], timeout=30,
                      what="delivery once the receiver recovers")


def test_a_pdu_the_receiver_rejects_in_a_200_is_not_retried(receiver):
    room_id = room_with_remote_member(receiver.server_name)
    receiver.reject_with = "You are not allowed to send a message to this room."
    send(room_id, "rejected")
    receiver.wait_for(lambda: not outbox_store.has_items(receiver.server_name),
                      what="the rows to be deleted")
    assert len(receiver.attempts) == 1


def test_queue_rows_roll_back_with_the_writing_transaction(receiver):
    room_id = room_with_remote_member(receiver.server_name)
    with pytest.raises(RuntimeError), transaction.atomic():
        send(room_id, "never happened")
        assert OutboundItem.objects.filter(destination=receiver.server_name).count() == 1
        raise RuntimeError("roll back")
    assert not OutboundItem.objects.filter(destination=receiver.server_name).exists()
    send(room_id, "happened")
    receiver.wait_for(lambda: bodies(receiver.pdus()) == ["happened"], what="the commit")
    assert "never happened" not in bodies(receiver.pdus())


def test_nothing_is_queued_for_a_destination_the_lists_refuse(receiver, settings):
    configure(settings, federation={"allow_list": (receiver.server_name, "friend.example"),
                                    "deny_list": ("friend.example",)})
    room_id = room_with_remote_member(receiver.server_name, "stranger.example",
                                      "friend.example")
    head = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    send(room_id, "for the allowed only")
    assert set(OutboundItem.objects.values_list("destination", flat=True)) <= {
        receiver.server_name}
    receiver.wait_for(lambda: bodies(receiver.pdus()) == ["for the allowed only"],
                      what="the allowed destination")
    assert outbox_store.destination_state("stranger.example") is None
    assert outbox_store.destination_state("friend.example") is None
    # Not a decision about a request: nothing is audited per event.
    assert not AuditRecord.objects.filter(seq__gt=head, action__gte=5000,
                                          action__lt=6000).exists()


def test_own_server_is_never_a_destination():
    with transaction.atomic():
        room_id = do_create_room(alice(), {})
        send(room_id, "local only")
    assert not OutboundItem.objects.exists()


def test_rows_for_a_destination_refused_since_are_dropped_with_one_audit_record(settings):
    head = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    with transaction.atomic():
        room_id = room_with_remote_member(LATER_DENIED)
        send(room_id, "one")
        send(room_id, "two")
        enqueue_edu("m.typing", {"room_id": room_id, "user_id": alice(), "typing": True},
                    [LATER_DENIED])
        assert OutboundItem.objects.filter(destination=LATER_DENIED).count() == 3
        # The lists change before the sender runs (the Celery worker has this entry already).
        configure(settings, federation={"deny_list": (LATER_DENIED,)})

    def dropped() -> list:
        return list(AuditRecord.objects.filter(seq__gt=head, action=5301))

    deadline_wait(lambda: dropped() and not OutboundItem.objects.exists())
    (rec,) = dropped()
    assert rec.target == LATER_DENIED and rec.actor_type == "system"
    assert json.loads(rec.details) == {"rule": "federation.deny_list", "pdus": 2, "edus": 1}


def test_leaving_kicked_and_banned_remote_users_servers_learn_of_it(receiver):
    room_id = room_with_remote_member(receiver.server_name)
    target = f"@member0:{receiver.server_name}"
    do_kick(alice(), room_id, target)
    receiver.wait_for(lambda: any(p["type"] == "m.room.member" for p in receiver.pdus()),
                      what="the kick")
    (kick,) = [p for p in receiver.pdus() if p["type"] == "m.room.member"]
    assert kick["state_key"] == target and kick["content"]["membership"] == "leave"
    # No member of that server is left: later messages are not sent there...
    send(room_id, "after the kick")
    # ... but a ban of one of its users is.
    do_ban(alice(), room_id, f"@someone:{receiver.server_name}")
    receiver.wait_for(lambda: len(receiver.pdus()) == 2, what="the ban")
    ban = receiver.pdus()[1]
    assert ban["content"]["membership"] == "ban"
    assert "after the kick" not in bodies(receiver.pdus())


def test_enqueue_pdu_skips_our_own_server_and_keeps_per_destination_order(receiver):
    room_id = room_with_remote_member(receiver.server_name)
    receiver.gate.clear()  # hold the first transaction so the rest queue behind it
    ids = [send(room_id, f"q{i}") for i in range(5)]
    with transaction.atomic():
        events = event_store.get_events(ids)
        enqueue_pdu(events[ids[0]], [server_name(), receiver.server_name])
    assert not OutboundItem.objects.filter(destination=server_name()).exists()
    receiver.gate.set()
    receiver.wait_for(lambda: len(receiver.pdus()) == 6, what="6 PDUs")
    assert bodies(receiver.pdus()) == ["q0", "q1", "q2", "q3", "q4", "q0"]


def deadline_wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_sweep_delivers_rows_whose_kick_was_lost_and_respects_backoff(receiver):
    """Beat's sweep (and a worker's start) kick every destination with due rows: rows whose
    on-commit kick never ran (a killed worker held it) still go out; a destination in backoff
    waits for its retry time."""
    from homeserver.services.federation import sender

    with transaction.atomic():  # straight into storage: no kick is scheduled
        outbox_store.queue(outbox_store.EDU, '{"edu_type":"m.typing","content":{}}',
                           [receiver.server_name, "backing-off.example"], sender.now_ms())
    # A sender tried it and failed an hour-long backoff ago (claim creates its state row).
    outbox_store.claim("backing-off.example", "t", sender.now_ms(), 1)
    outbox_store.release("backing-off.example", "t")
    outbox_store.record_failure("backing-off.example", sender.now_ms(), 3_600_000, "HTTP 502")
    assert sender.sweep() == [receiver.server_name]
    receiver.wait_for(lambda: len(receiver.edus()) == 1, what="the swept EDU")
    assert outbox_store.destination_state("backing-off.example").queued == 1


def test_a_worker_start_frees_leases_of_dead_senders_on_its_host_only():
    import os
    import subprocess
    import sys

    from homeserver.services.federation import sender

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    prefix = sender._owner_prefix()
    now = sender.now_ms()
    leases = {"dead.example": f"{prefix}{dead}:x", "alive.example": f"{prefix}{os.getppid()}:x",
              "elsewhere.example": f"otherhost:{dead}:x"}
    for destination, owner in leases.items():
        assert outbox_store.claim(destination, owner, now, 600_000)
    assert sender.release_stale_leases() == ["dead.example"]
    assert outbox_store.claim("dead.example", "new-owner", sender.now_ms(), 1000)
    assert not outbox_store.claim("alive.example", "new-owner", sender.now_ms(), 1000)
    assert not outbox_store.claim("elsewhere.example", "new-owner", sender.now_ms(), 1000)


def test_backoff_doubles_per_failure_up_to_the_cap(settings):
    from homeserver.services.federation.sender import backoff_seconds

    configure(settings, federation={"retry_initial_seconds": 10, "retry_max_seconds": 3600})
    assert [backoff_seconds(n) for n in (1, 2, 3, 4, 9, 20)] == [10, 20, 40, 80, 2560, 3600]


@pytest.mark.parametrize("key", ["RETRY_INITIAL_SECONDS", "RETRY_MAX_SECONDS",
                                 "SWEEP_INTERVAL_SECONDS"])
def test_queue_settings_must_be_positive(key):
    from homeserver.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=key.lower()):
        load_config(None, environ={f"PALISADE__FEDERATION__{key}": "0"})


def test_an_embedded_server_resumes_what_an_earlier_run_left_queued(receiver, settings):
    """Without Redis there is no worker to resume the queue: `palisade serve` calls
    resume_embedded() at start, which sends rows an earlier process left behind."""
    from homeserver.services.federation import sender

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("embedded mode only (with Redis the worker's start resumes the queue)")
    with transaction.atomic():  # as if the previous process died before its kick ran
        outbox_store.queue(outbox_store.EDU, '{"edu_type":"m.typing","content":{}}',
                           [receiver.server_name], sender.now_ms())
    sender.resume_embedded()
    receiver.wait_for(lambda: len(receiver.edus()) == 1, what="the resumed EDU")
