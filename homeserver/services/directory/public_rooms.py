"""The published room directory: a room's visibility in it, and listing it.

Spec: client-server API "Published room directory" (GET/PUT /directory/list/room/{roomId},
GET/POST /publicRooms).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, ServerName
from homeserver.protocol.redaction import redact_pdu
from homeserver.services.directory.aliases import parse_room_id
from homeserver.services.directory.power import check_room_admin
from homeserver.storage import directory as dir_store
from homeserver.storage import events as event_store
from homeserver.storage import rooms as room_store

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
SUMMARY_KEYS = [
    (t, "")
    for t in (
        "m.room.create",
        "m.room.name",
        "m.room.topic",
        "m.room.avatar",
        "m.room.canonical_alias",
        "m.room.join_rules",
        "m.room.history_visibility",
        "m.room.guest_access",
    )
]


def get_visibility(room_id_text: str) -> dict[str, str]:
    public = dir_store.room_is_public(parse_room_id(room_id_text))
    if public is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "Room not found")
    return {"visibility": "public" if public else "private"}


def do_set_visibility(
    user_id: str, room_id_text: str, body: dict[str, Any], *, is_server_admin: bool
) -> None:
    """Room admins (see power.check_room_admin) and server admins may (un)publish a room."""
    room_id = parse_room_id(room_id_text)
    visibility = body.get("visibility", "public")  # Spec: defaults to `public`.
    if visibility not in ("public", "private"):
        raise MatrixError(400, Errcode.INVALID_PARAM, "visibility must be public or private")
    current = dir_store.room_is_public(room_id)
    if current is None:
        raise MatrixError(404, Errcode.NOT_FOUND, "Room not found")
    check_room_admin(room_id, user_id, is_server_admin=is_server_admin,
                     what="change the room's directory visibility")
    public = visibility == "public"
    if public and not settings.PALISADE.directory.public_rooms_enabled:
        raise MatrixError(403, Errcode.FORBIDDEN, "This server does not publish a room directory")
    if public == current:
        return
    with transaction.atomic():
        room_store.set_public(room_id, public)
        record(
            AuditAction.ROOM_DIRECTORY_VISIBILITY_CHANGED,
            actor=user_id,
            actor_type=ActorType.USER,
            target=room_id,
            details={"visibility": visibility},
        )


def check_directory_enabled() -> None:
    if not settings.PALISADE.directory.public_rooms_enabled:
        raise MatrixError(403, Errcode.FORBIDDEN, "This server does not publish a room directory")


def _parse_since(since: Any) -> int:
    if since is None or since == "":
        return 0
    if not isinstance(since, str) or not since.startswith("o") or not since[1:].isdigit():
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid pagination token {since!r}")
    return int(since[1:])


def _check_filter(flt: Any) -> tuple[str, list | None]:
    if flt is None:
        return "", None
    if not isinstance(flt, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "filter must be an object")
    term = flt.get("generic_search_term") or ""
    if not isinstance(term, str):
        raise MatrixError(400, Errcode.BAD_JSON, "generic_search_term must be a string")
    types = flt.get("room_types")
    if types is not None and (
        not isinstance(types, list) or any(t is not None and not isinstance(t, str) for t in types)
    ):
        raise MatrixError(400, Errcode.BAD_JSON, "room_types must be a list of strings or null")
    return term.strip().lower(), (types or None)


def list_public_rooms(
    *, limit: Any = None, since: Any = None, flt: Any = None, server: Any = None,
    third_party_instance_id: Any = None,
) -> dict[str, Any]:
    """One page of the local directory, largest rooms first (then by room ID, a stable order).
    Tokens are offsets `o<n>`; the page before `o<n>` starts at n - limit."""
    check_directory_enabled()
    if server is not None and server != settings.PALISADE.server_name:
        try:
            ServerName.parse(server)
        except InvalidIdentifier:
            raise MatrixError(400, Errcode.INVALID_PARAM, f"Invalid server name {server!r}") \
                from None
        # Another server's directory needs a federation request (issue 7).
        raise MatrixError(404, Errcode.NOT_FOUND, f"Cannot fetch the room directory of {server}")
    if limit is None or limit == 0:
        limit = DEFAULT_LIMIT
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise MatrixError(400, Errcode.INVALID_PARAM, "limit must be a non-negative integer")
    limit = min(limit, MAX_LIMIT)
    offset = _parse_since(since)
    term, types = _check_filter(flt)
    entries = [] if third_party_instance_id is not None else room_summaries(
        dir_store.published_room_ids()
    )
    total = len(entries)
    if term:
        entries = [e for e in entries if _matches(e, term)]
    if types is not None:
        entries = [e for e in entries if e.get("room_type") in types]
    entries.sort(key=lambda e: (-e["num_joined_members"], e["room_id"]))
    resp: dict[str, Any] = {
        "chunk": entries[offset : offset + limit],
        "total_room_count_estimate": total,
    }
    if offset + limit < len(entries):
        resp["next_batch"] = f"o{offset + limit}"
    if offset > 0:
        resp["prev_batch"] = f"o{max(0, offset - limit)}"
    return resp


def _matches(entry: dict[str, Any], term: str) -> bool:
    return any(
        term in entry[k].lower() for k in ("name", "topic", "canonical_alias") if k in entry
    )


def _topic(content: dict[str, Any]) -> str | None:
    """Spec: m.room.topic; the plain-text topic (`topic`, or the text/plain m.topic block)."""
    if isinstance(content.get("topic"), str):
        return content["topic"]
    block = content.get("m.topic")
    if isinstance(block, dict) and isinstance(block.get("m.text"), list):
        for rep in block["m.text"]:
            if isinstance(rep, dict) and rep.get("mimetype", "text/plain") == "text/plain":
                body = rep.get("body")
                if isinstance(body, str):
                    return body
    return None


def room_summaries(room_ids: list[str]) -> list[dict[str, Any]]:
    """PublishedRoomsChunk entries (spec: public_rooms_chunk.yaml) for rooms with joined
    members; a fixed number of queries for any number of rooms."""
    counts = dir_store.joined_member_counts(room_ids)
    room_ids = [r for r in room_ids if counts.get(r)]
    state = dir_store.bulk_state_ids(room_ids, SUMMARY_KEYS)
    records = event_store.get_event_records(eid for s in state.values() for eid in s.values())
    out = []
    for room_id in room_ids:
        c: dict[str, dict[str, Any]] = {}
        for (etype, _), eid in state.get(room_id, {}).items():
            rec = records.get(eid)
            if rec is not None:
                ev = rec.event
                pdu = redact_pdu(ev.pdu, ev.room_version) if rec.redacted_by else ev.pdu
                c[etype] = pdu.get("content", {})
        entry: dict[str, Any] = {
            "room_id": room_id,
            "num_joined_members": counts[room_id],
            "world_readable": c.get("m.room.history_visibility", {}).get("history_visibility")
            == "world_readable",
            "guest_can_join": c.get("m.room.guest_access", {}).get("guest_access") == "can_join",
            # Without a join rules event a room is invite-only (an absent field means public).
            "join_rule": c.get("m.room.join_rules", {}).get("join_rule", "invite"),
        }
        for key, etype, field in (
            ("name", "m.room.name", "name"),
            ("avatar_url", "m.room.avatar", "url"),
            ("canonical_alias", "m.room.canonical_alias", "alias"),
            ("room_type", "m.room.create", "type"),
        ):
            value = c.get(etype, {}).get(field)
            if isinstance(value, str) and value:
                entry[key] = value
        topic = _topic(c.get("m.room.topic", {}))
        if topic:
            entry["topic"] = topic
        if not isinstance(entry["join_rule"], str):
            entry["join_rule"] = "invite"
        out.append(entry)
    return out


def check_query_body(body: dict[str, Any]) -> dict[str, Any]:
    """POST /publicRooms body -> list_public_rooms keyword arguments (400 M_BAD_JSON for a
    field of the wrong type)."""
    for key, kind in (("limit", int), ("since", str), ("third_party_instance_id", str),
                      ("include_all_networks", bool)):
        value = body.get(key)
        if value is not None and (not isinstance(value, kind) or
                                  (kind is int and isinstance(value, bool))):
            raise MatrixError(400, Errcode.BAD_JSON, f"{key} must be a {kind.__name__}")
    return {
        "limit": body.get("limit"),
        "since": body.get("since"),
        "flt": body.get("filter"),
        "third_party_instance_id": body.get("third_party_instance_id"),
    }
