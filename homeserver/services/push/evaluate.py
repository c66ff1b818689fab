"""Push rule evaluation for each new event, inside the transaction that persists it.

Spec: client-server API "Push Notifications" -> "Server behaviour": "When receiving a new
event homeservers process push rules for each of the local users in the room (excluding the
sender)", and "The updated notification count from a new event MUST appear in the same /sync
response as the event itself" — hence in-transaction, not after commit. "Marking notifications
as read": sending an event marks what precedes it as read for the sender.

Cost on the send path (pinned in tests/services/test_event_store.py): one upsert of the
sender's read mark, one query for the joined members with their stored rules and whether they
have a pusher, and — only if somebody is notified — one bulk insert. Display names (for the
legacy .m.rule.contains_display_name) and power levels (room mentions) are loaded only when a
condition asks for them, once per event. CPU is linear in the number of local members: users
who never changed their rules share one ruleset, and conditions that do not depend on the user
are evaluated once per event (see bench/push_eval.py for the measured cost per member).
Delivery to push gateways happens after commit, in a Celery task (services/push/dispatch.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import transaction

from homeserver.protocol.events import Event
from homeserver.protocol.power_levels import notification_level, user_power_level
from homeserver.protocol.push_rules import evaluate, highlights, notifies
from homeserver.protocol.push_rules_bulk import evaluate_prepared, prepare
from homeserver.protocol.push_rules_defaults import merged_ruleset
from homeserver.services.accounts.user_ids import server_name
from homeserver.storage import events as event_store
from homeserver.storage import push_actions as action_store
from homeserver.storage import state as state_store
from homeserver.storage.receipts import advance_read_mark, thread_of
from homeserver.storage.rooms import room_version

_DEFAULT_RULES = merged_ruleset(None, None)  # shared by every user without their own rules


class _RoomContext:
    """What conditions may ask about the room, loaded on first use (protocol RoomContext)."""

    def __init__(self, room_id: str, sender: str, member_count: int) -> None:
        self.room_id = room_id
        self.sender = sender
        self.member_count = member_count
        self._names: dict[str, str] | None = None
        self._power: tuple[int, dict | None] | None = None

    def display_name(self, user_id: str) -> str | None:
        if self._names is None:
            self._names = action_store.member_display_names(self.room_id)
        return self._names.get(user_id)

    def _power_levels(self) -> tuple[int, dict | None]:
        if self._power is None:
            keys = [("m.room.power_levels", ""), ("m.room.create", "")]
            ids = state_store.current_state_ids(self.room_id, keys)
            events = event_store.get_events(ids.values())
            pl = events.get(ids.get(("m.room.power_levels", ""), ""))
            create = events.get(ids.get(("m.room.create", ""), ""))
            rv = room_version(self.room_id)
            level = user_power_level(self.sender, pl, create, rv) if rv else 0
            self._power = (int(min(level, 2**53)), pl.content if pl else None)
        return self._power

    def sender_power_level(self) -> int:
        return self._power_levels()[0]

    def notification_level(self, key: str) -> int:
        return notification_level(self._power_levels()[1], key)


def thread_of_new_event(pdu: dict[str, Any]) -> str:
    """Spec "Threaded read receipts": the thread root for m.thread relations; other relations
    inherit their parent's thread; everything else is in the main timeline."""
    content = pdu.get("content")
    rel = content.get("m.relates_to") if isinstance(content, dict) else None
    if not isinstance(rel, dict) or not isinstance(rel.get("event_id"), str):
        return "main"
    if rel.get("rel_type") == "m.thread":
        return rel["event_id"]
    return thread_of(rel["event_id"])


def _is_local(user_id: str) -> bool:
    return user_id.endswith(":" + server_name())


def record_push_actions(event: Event, position: int) -> None:
    """Evaluate `event` (just persisted at `position`, current state already updated) for every
    local member but its sender; store who is notified; schedule delivery after commit."""
    plan_push_actions(event)(position)


def plan_push_actions(event: Event) -> Callable[[int], None]:
    """record_push_actions in two steps: evaluate now (nothing here needs the stream position),
    return the writer that stores the result at the event's position. The send path plans a
    non-state event before it takes the position, whose lock is held to COMMIT."""
    if event.rejected_reason is not None or event.room_id is None:
        return _nothing
    room_id = event.room_id
    pdu = event.pdu
    thread = thread_of_new_event(pdu)
    leaving = event.type == "m.room.member" and event.state_key == event.sender and \
        pdu.get("content", {}).get("membership") in ("leave", "ban")
    mark_read = _is_local(event.sender) and not leaving  # a leaver has nothing left to read
    members = action_store.members_for_push(room_id)
    candidates = [m for m in members if m.user_id != event.sender and _is_local(m.user_id)]
    if event.type == "m.room.member" and pdu.get("content", {}).get("membership") == "invite":
        target = event.state_key or ""
        if target != event.sender and _is_local(target):
            candidates.append(action_store.push_member(target))  # spec .m.rule.invite_for_me
    rows, to_push = [], []
    if candidates:
        ctx = _RoomContext(room_id, event.sender, len(members))
        cache: dict = {}
        defaults = prepare(_DEFAULT_RULES, pdu, ctx, cache)  # once per event, not per member
        now = int(time.time() * 1000)
        for member in candidates:
            if member.rules is None:
                result = evaluate_prepared(defaults, pdu, member.user_id, ctx, cache)
            else:
                result = evaluate(merged_ruleset(None, member.rules), pdu, member.user_id, ctx,
                                  cache)
            if result is None or not notifies(result[1]):
                continue
            actions = result[1]
            rows.append({"user_id": member.user_id, "room_id": room_id,
                         "event_id": event.event_id, "stream_ordering": 0,
                         "thread_id": thread, "highlight": highlights(actions),
                         "actions": actions, "ts": now})
            if member.has_pusher:
                to_push.append(member.user_id)

    def write(position: int) -> None:
        if mark_read:
            advance_read_mark(event.sender, room_id, thread, position)
        if rows:
            for row in rows:
                row["stream_ordering"] = position
            action_store.insert_actions(rows)
        if to_push:
            from homeserver.services.push.dispatch import enqueue_event

            event_id = event.event_id
            transaction.on_commit(lambda: enqueue_event(event_id, to_push))

    return write


def _nothing(position: int) -> None:
    return None
