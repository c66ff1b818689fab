"""A tiny room simulator for the auth rule tests: builds events with tests/protocol/factory.py,
keeps the current state, cites the right auth events, and checks events against them.

Room ids follow the room version: `!room:example.org` before v12, the create event's id with
the `!` sigil in v12 (the create event then has no room_id and is never cited).
"""

from __future__ import annotations

import itertools
from typing import Any

from homeserver.protocol.auth_rules import (
    AuthError,
    auth_types_for_event,
    check_auth_events,
    check_auth_rules,
)
from homeserver.protocol.events import Event
from homeserver.protocol.room_versions import KNOWN_ROOM_VERSIONS
from tests.protocol.factory import make_event

ALICE = "@alice:example.org"  # the creator
BOB = "@bob:example.org"
CAROL = "@carol:other.org"  # on another server
MOD = "@mod:example.org"  # power level 50 in the standard room
ZED = "@zed:example.org"

Key = tuple[str, str]


class Room:
    def __init__(
        self,
        version: str = "10",
        *,
        creator: str = ALICE,
        create_content: dict[str, Any] | None = None,
    ) -> None:
        self.version = version
        self.rv = KNOWN_ROOM_VERSIONS[version]
        self._ids = itertools.count(1)
        self.state: dict[Key, Event] = {}
        content = {"room_version": version}
        if not self.rv.implicit_room_creator:
            content["creator"] = creator
        content.update(create_content or {})
        v12 = self.rv.room_id_from_create_event
        self.create = make_event(
            "$CREATE",
            "m.room.create",
            creator,
            content,
            state_key="",
            room_id=None if v12 else "!room:example.org",
            room_version=self.rv,
        )
        self.room_id = self.create.room_id
        self.creator = creator
        self.state[("m.room.create", "")] = self.create
        self.last = self.create.event_id

    @classmethod
    def standard(cls, version: str = "10", join_rule: str = "invite", **pl: Any) -> Room:
        """Alice created and joined; power levels give alice 100 (v12: she is the infinite
        creator and is not listed) and MOD 50; the given join rule. MOD is joined too."""
        room = cls(version)
        room.member(ALICE, "join")
        users = {} if room.rv.room_id_from_create_event else {ALICE: 100}
        users[MOD] = 50
        room.power_levels({"users": users, **pl})
        room.join_rule(join_rule)
        room.member(MOD, "invite", sender=ALICE)
        room.member(MOD, "join")
        return room

    # ---- building events -------------------------------------------------------------------

    def event(
        self,
        type: str,
        sender: str,
        content: dict[str, Any] | None = None,
        *,
        state_key: str | None = None,
        event_id: str | None = None,
        prev_events: list[str] | None = None,
        **extra: Any,
    ) -> Event:
        """An event citing exactly the auth events the selection algorithm picks from state."""
        content = content or {}
        keys = auth_types_for_event(self.rv, type, sender, state_key, content)
        auth_ids = [self.state[k].event_id for k in keys if k in self.state]
        return make_event(
            event_id or f"$e{next(self._ids)}:example.org",
            type,
            sender,
            content,
            state_key=state_key,
            prev_events=[self.last] if prev_events is None else prev_events,
            auth_events=auth_ids,
            room_version=self.rv,
            **{"room_id": self.room_id, **extra},
        )

    def member_event(
        self, user: str, membership: str, *, sender: str | None = None, **content: Any
    ) -> Event:
        return self.event(
            "m.room.member", sender or user, {"membership": membership, **content}, state_key=user
        )

    # ---- changing state without checks (test setup) ----------------------------------------

    def add(self, event: Event) -> Event:
        if event.state_key is not None:
            self.state[(event.type, event.state_key)] = event
        self.last = event.event_id
        return event

    def member(self, user: str, membership: str, *, sender: str | None = None, **content: Any):
        return self.add(self.member_event(user, membership, sender=sender, **content))

    def power_levels(self, content: dict[str, Any], sender: str = ALICE) -> Event:
        return self.add(self.event("m.room.power_levels", sender, content, state_key=""))

    def join_rule(self, rule: str, sender: str = ALICE, **content: Any) -> Event:
        return self.add(
            self.event("m.room.join_rules", sender, {"join_rule": rule, **content}, state_key="")
        )

    # ---- checking --------------------------------------------------------------------------

    def auth_map(self, event: Event) -> dict[Key, Event]:
        """The selected auth events of `event` from current state, as state resolution and
        local event creation pass them (v12: plus the create event, never cited)."""
        keys = auth_types_for_event(
            self.rv, event.type, event.sender, event.state_key, event.content
        )
        selected = {k: self.state[k] for k in keys if k in self.state}
        selected[("m.room.create", "")] = self.create
        return selected

    def check(self, event: Event) -> None:
        check_auth_rules(event, self.auth_map(event))

    def allows(self, event: Event) -> bool:
        try:
            self.check(event)
        except AuthError:
            return False
        return True

    def reason(self, event: Event) -> str:
        try:
            self.check(event)
        except AuthError as exc:
            return exc.reason
        raise AssertionError(f"{event.type} from {event.sender} was allowed")

    def check_as_received(self, event: Event) -> None:
        """Receipt step 4: the event's own auth_events list, then the rules against it."""
        by_id = {e.event_id: e for e in self.state.values()}
        cited = [by_id[i] for i in event.auth_event_ids]
        create = self.create if self.rv.room_id_from_create_event else None
        check_auth_rules(event, check_auth_events(event, cited, create_event=create))
