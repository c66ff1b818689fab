"""What the policies read: a room's current state and stored events (through homeserver/storage,
never writing), the state a createRoom request asks for, and a remote room's state list."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeserver.services.rooms.create_content import PRESET_STATE
from homeserver.storage import events as event_store
from homeserver.storage import state as state_store

StateKey = tuple[str, str]


def current_state_event_id(room_id: str, event_type: str, state_key: str = "") -> str | None:
    return state_store.current_state_ids(room_id, [(event_type, state_key)]).get(
        (event_type, state_key)
    )


def current_state_content(room_id: str, event_type: str, state_key: str = "") -> dict | None:
    event_id = current_state_event_id(room_id, event_type, state_key)
    event = event_store.get_event(event_id) if event_id else None
    return event.content if event else None


def stored_event(event_id: Any) -> Any:
    """The stored event (protocol Event) or None."""
    return event_store.get_event(event_id) if isinstance(event_id, str) else None


def requested_state(request: dict[str, Any]) -> dict[StateKey, dict] | None:
    """Spec: client-server API "POST /_matrix/client/v3/createRoom": the state the request
    sets — the preset's join rule and history visibility, overridden by initial_state (later
    entries win). None when the request is malformed: the service answers 400 right after the
    hook, so a policy has nothing to decide."""
    visibility = request.get("visibility", "private")
    preset = request.get("preset") or ("public_chat" if visibility == "public" else "private_chat")
    initial = request.get("initial_state") or []
    if preset not in PRESET_STATE or not isinstance(initial, list):
        return None
    state: dict[StateKey, dict] = {
        ("m.room.join_rules", ""): {"join_rule": PRESET_STATE[preset]["join_rule"]},
        ("m.room.history_visibility", ""): {
            "history_visibility": PRESET_STATE[preset]["history_visibility"]
        },
    }
    for raw in initial:
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("type"), str)
            or not isinstance(raw.get("content"), dict)
        ):
            return None
        state[(raw["type"], str(raw.get("state_key", "")))] = raw["content"]
    return state


def explicit_initial_state(request: dict[str, Any]) -> set[StateKey]:
    """The (type, state_key) pairs the request's initial_state sets itself."""
    return {
        (raw["type"], str(raw.get("state_key", "")))
        for raw in request.get("initial_state") or []
        if isinstance(raw, dict) and isinstance(raw.get("type"), str)
    }


def with_initial_state(request: dict[str, Any], additions: Iterable[tuple[str, dict]]) -> dict:
    """A copy of the request whose initial_state starts with `additions` (state_key ""):
    entries the request sets itself come later and so still win."""
    added = [{"type": t, "state_key": "", "content": c} for t, c in additions]
    return {**request, "initial_state": added + list(request.get("initial_state") or [])}


def state_list_content(state: Any, event_type: str, state_key: str = "") -> dict | None:
    """Content of (type, state_key) in a list of state events as a remote server sends them
    (send_join `state`, or an invite's stripped `invite_room_state`); None if absent."""
    found = None
    for ev in state if isinstance(state, list | tuple) else []:
        if (
            isinstance(ev, dict)
            and ev.get("type") == event_type
            and ev.get("state_key") == state_key
            and isinstance(ev.get("content"), dict)
        ):
            found = ev["content"]
    return found
