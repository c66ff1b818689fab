"""User directory search. Spec: client-server API "User Directory"
(POST /user_directory/search).

Who can be found: users sharing a joined room with the searcher, and — unless
`[directory] search_all_public_members = false` (ePA: "no user-directory hits without a shared
room") — users joined to rooms with a `public` join rule or `world_readable` history, which is
the minimum the spec asks for. Matching is a case-insensitive substring match on the user ID and
the display name; deactivated users are never found. Remote users match on their user ID only
until federation brings their profiles (issue 7).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.redaction import redact_pdu
from homeserver.storage import directory as dir_store
from homeserver.storage import events as event_store

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
# Candidates ranked per search; beyond it the answer is `limited` anyway.
CANDIDATE_CAP = 500
# (event type, canonical JSON needle, content key, value) making a room's members findable.
PUBLIC_MARKERS = (
    ("m.room.join_rules", '"join_rule":"public"', "join_rule", "public"),
    ("m.room.history_visibility", '"history_visibility":"world_readable"',
     "history_visibility", "world_readable"),
)


def check_search_request(body: dict[str, Any]) -> tuple[str, int]:
    if "search_term" not in body:
        raise MatrixError(400, Errcode.MISSING_PARAM, "search_term is required")
    term = body["search_term"]
    if not isinstance(term, str):
        raise MatrixError(400, Errcode.BAD_JSON, "search_term must be a string")
    limit = body.get("limit", DEFAULT_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise MatrixError(400, Errcode.BAD_JSON, "limit must be a non-negative integer")
    return term.strip(), min(limit, MAX_LIMIT)


def public_member_rooms() -> set[str]:
    """Rooms whose current join rule is public or whose history is world_readable."""
    rooms: set[str] = set()
    for etype, needle, key, value in PUBLIC_MARKERS:
        candidates = dir_store.rooms_whose_state_may_contain(etype, needle)
        state = dir_store.bulk_state_ids(candidates, [(etype, "")])
        records = event_store.get_event_records(
            s[(etype, "")] for s in state.values() if (etype, "") in s
        )
        for room_id, s in state.items():
            rec = records.get(s.get((etype, ""), ""))
            if rec is None:
                continue
            ev = rec.event
            pdu = redact_pdu(ev.pdu, ev.room_version) if rec.redacted_by else ev.pdu
            if pdu.get("content", {}).get(key) == value:
                rooms.add(room_id)
    return rooms


def search(searcher: str, body: dict[str, Any]) -> dict[str, Any]:
    term, limit = check_search_request(body)
    if not term:
        return {"results": [], "limited": False}
    rooms = set(dir_store.joined_room_ids(searcher))
    if settings.PALISADE.directory.search_all_public_members:
        rooms |= public_member_rooms()
    found = dir_store.search_joined_members(sorted(rooms), term, CANDIDATE_CAP)
    profiles = dir_store.profiles(found)
    lowered = term.lower()

    def rank(user_id: str) -> tuple:
        name = profiles.get(user_id, ("", ""))[0]
        localpart = user_id[1:].split(":", 1)[0].lower()
        exact = lowered in (localpart, user_id.lower(), name.lower())
        prefix = localpart.startswith(lowered) or any(
            w.startswith(lowered) for w in name.lower().split()
        )
        # Spec: "Ordered by rank and then whether or not profile info is available."
        return (not exact, not prefix, not name, user_id)

    found.sort(key=rank)
    results = []
    for user_id in found[:limit]:
        entry: dict[str, Any] = {"user_id": user_id}
        name, avatar = profiles.get(user_id, ("", ""))
        if name:
            entry["display_name"] = name
        if avatar:
            entry["avatar_url"] = avatar
        results.append(entry)
    return {"results": results, "limited": len(found) > limit}
