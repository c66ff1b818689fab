"""Events: persist whole PDUs with their edges; read them back as protocol Events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from django.db import connection

from homeserver.models import Event as EventRow
from homeserver.models import EventEdge, EventRelation, ForwardExtremity
from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.events import Event
from homeserver.storage import placeholders
from homeserver.storage.rooms import room_version


def _to_event(event_id: str, room_id: str, json_text: str, rejection: str | None) -> Event:
    rv = room_version(room_id)
    assert rv is not None, f"event {event_id} in unknown room {room_id}"
    return Event(
        event_id=event_id, room_version=rv, pdu=orjson.loads(json_text), rejected_reason=rejection
    )


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event with what this server knows about it beyond the PDU."""

    event: Event
    stream_ordering: int | None
    redacted_by: str | None
    replaces_state: str | None
    state_group: int | None


_RECORD_COLUMNS = (
    "event_id",
    "room_id",
    "json",
    "rejection_reason",
    "stream_ordering",
    "redacted_by",
    "replaces_state",
    "state_group",
)


def _to_record(row: tuple) -> EventRecord:
    return EventRecord(_to_event(*row[:4]), row[4], row[5], row[6], row[7])


def get_event_records(event_ids: Iterable[str]) -> dict[str, EventRecord]:
    ids = list(set(event_ids))
    if not ids:
        return {}
    rows = EventRow.objects.filter(event_id__in=ids).values_list(*_RECORD_COLUMNS)
    return {r[0]: _to_record(r) for r in rows}


def room_timeline(
    room_id: str,
    *,
    after: int | None = None,
    upto: int | None = None,
    limit: int,
    backwards: bool = True,
) -> list[EventRecord]:
    """Timeline events with after < stream_ordering <= upto, `limit` of them from the `upto`
    end (backwards=True) or the `after` end, returned in stream order (oldest first)."""
    qs = EventRow.objects.filter(
        room_id=room_id, stream_ordering__isnull=False, rejection_reason__isnull=True
    )
    if after is not None:
        qs = qs.filter(stream_ordering__gt=after)
    if upto is not None:
        qs = qs.filter(stream_ordering__lte=upto)
    qs = qs.order_by("-stream_ordering" if backwards else "stream_ordering")
    rows = [_to_record(r) for r in qs.values_list(*_RECORD_COLUMNS)[:limit]]
    if backwards:
        rows.reverse()
    return rows


def rooms_with_events(room_ids: Iterable[str], after: int, upto: int) -> set[str]:
    return set(
        EventRow.objects.filter(
            room_id__in=list(room_ids), stream_ordering__gt=after, stream_ordering__lte=upto
        )
        .values_list("room_id", flat=True)
        .distinct()
    )


def mark_redacted(event_id: str, redaction_event_id: str) -> None:
    EventRow.objects.filter(event_id=event_id, redacted_by__isnull=True).update(
        redacted_by=redaction_event_id
    )


def get_events(event_ids: Iterable[str]) -> dict[str, Event]:
    ids = list(set(event_ids))
    if not ids:
        return {}
    with connection.cursor() as cur:  # raw SQL: on every send (the auth events) and /sync
        cur.execute(
            "SELECT event_id, room_id, json, rejection_reason FROM events "  # noqa: S608
            f"WHERE event_id IN ({placeholders(len(ids))})",
            ids,
        )
        rows = cur.fetchall()
    return {r[0]: _to_event(*r) for r in rows}


def get_event(event_id: str) -> Event | None:
    return get_events([event_id]).get(event_id)


def persist_event(
    event: Event,
    *,
    stream_ordering: int | None,
    state_group: int | None,
    outlier: bool = False,
    replaces_state: str | None = None,
    withheld_reason: str | None = None,
    links: bool = True,
) -> None:
    """The event row, and its links (persist_event_links) unless `links=False` says the caller
    wrote them already (the send path does, before it takes the stream position)."""
    pdu = event.pdu
    with connection.cursor() as cur:  # raw SQL: one per event; a duplicate is IntegrityError
        cur.execute(
            "INSERT INTO events (event_id, room_id, type, state_key, sender, depth, "
            "stream_ordering, origin_server_ts, outlier, rejection_reason, withheld_reason, "
            "redacted_by, replaces_state, state_group, json) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, %s, %s, %s)",
            [event.event_id, event.room_id, event.type, event.state_key, event.sender,
             event.depth, stream_ordering, event.origin_server_ts, outlier,
             event.rejected_reason, withheld_reason, replaces_state, state_group,
             encode_canonical_json(pdu).decode()],
        )
    if links:
        persist_event_links(event, outlier=outlier)


def persist_event_links(event: Event, *, outlier: bool = False) -> None:
    """DAG edges, auth edges and the relation of `event`: rows keyed by event id only. Raw
    multi-row INSERTs: this runs for every event sent or received."""
    pdu = event.pdu
    eid = event.event_id
    with connection.cursor() as cur:
        prevs = list(event.prev_event_ids)
        if prevs and not outlier:  # an outlier is not in our DAG yet: edges come when it joins
            cur.execute(
                "INSERT INTO event_edges (event_id, prev_event_id, room_id) VALUES "  # noqa: S608
                + ", ".join(["(%s, %s, %s)"] * len(prevs)),
                [v for p in prevs for v in (eid, p, event.room_id)],
            )
        auths = list(event.auth_event_ids)
        if auths:
            cur.execute(
                "INSERT INTO event_auth_edges (event_id, auth_event_id) VALUES "  # noqa: S608
                + ", ".join(["(%s, %s)"] * len(auths)),
                [v for a in auths for v in (eid, a)],
            )
        rel = pdu.get("content", {}).get("m.relates_to")
        if (
            isinstance(rel, dict)
            and isinstance(rel.get("event_id"), str)
            and isinstance(rel.get("rel_type"), str)
        ):
            cur.execute(
                "INSERT INTO event_relations (event_id, relates_to_id, rel_type, room_id, "
                "event_type) VALUES (%s, %s, %s, %s, %s)",
                [eid, rel["event_id"], rel["rel_type"], event.room_id, event.type],
            )




def replace_forward_extremities(room_id: str, remove: Iterable[str], add: str | None) -> None:
    remove = list(remove)
    with connection.cursor() as cur:  # raw SQL: on every event sent or received
        if remove:
            cur.execute(
                "DELETE FROM forward_extremities WHERE room_id = %s "  # noqa: S608
                f"AND event_id IN ({placeholders(len(remove))})",
                [room_id, *remove],
            )
        if add is not None:
            cur.execute(
                "INSERT INTO forward_extremities (room_id, event_id) VALUES (%s, %s)",
                [room_id, add],
            )


def forward_extremities(room_id: str) -> list[str]:
    return list(ForwardExtremity.objects.filter(room_id=room_id).values_list("event_id", flat=True))


def known_event_ids(event_ids: Iterable[str]) -> set[str]:
    ids = list(set(event_ids))
    if not ids:
        return set()
    return set(EventRow.objects.filter(event_id__in=ids).values_list("event_id", flat=True))


def has_successor(event_id: str) -> bool:
    """Whether some event we hold lists `event_id` among its prev_events."""
    return EventEdge.objects.filter(prev_event_id=event_id).exists()


def event_status(event_id: str) -> tuple[bool, str | None, str | None] | None:
    """(outlier, rejection_reason, withheld_reason) of an event we hold, else None."""
    row = (EventRow.objects.filter(event_id=event_id)
           .values_list("outlier", "rejection_reason", "withheld_reason").first())
    return None if row is None else (row[0], row[1], row[2])


def promote_outlier(event: Event, *, stream_ordering: int | None, state_group: int | None,
                    replaces_state: str | None, withheld_reason: str | None) -> None:
    """An event first stored as an outlier (e.g. from an auth chain) reached through the DAG:
    give it its place in the timeline and its state."""
    EventRow.objects.filter(event_id=event.event_id).update(
        outlier=False, stream_ordering=stream_ordering, state_group=state_group,
        replaces_state=replaces_state, withheld_reason=withheld_reason,
        rejection_reason=event.rejected_reason)
    if not EventEdge.objects.filter(event_id=event.event_id).exists():
        EventEdge.objects.bulk_create([
            EventEdge(event_id=event.event_id, prev_event_id=p, room_id=event.room_id)
            for p in event.prev_event_ids])


def prev_events_of(event_ids: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for eid, prev in EventEdge.objects.filter(event_id__in=list(event_ids)).values_list(
            "event_id", "prev_event_id"):
        out.setdefault(eid, []).append(prev)
    return out






def relations(
    event_id: str,
    rel_type: str | None,
    event_type: str | None,
    *,
    before: int | None,
    after: int | None,
    limit: int,
    backwards: bool,
) -> list[EventRecord]:
    ids = EventRelation.objects.filter(relates_to_id=event_id)
    if rel_type:
        ids = ids.filter(rel_type=rel_type)
    if event_type:
        ids = ids.filter(event_type=event_type)
    qs = EventRow.objects.filter(event_id__in=ids.values("event_id"), stream_ordering__isnull=False)
    if before is not None:
        qs = qs.filter(stream_ordering__lte=before)
    if after is not None:
        qs = qs.filter(stream_ordering__gt=after)
    qs = qs.order_by("-stream_ordering" if backwards else "stream_ordering")
    return [_to_record(r) for r in qs.values_list(*_RECORD_COLUMNS)[:limit]]


def forward_extremities_with_depth(room_id: str) -> dict[str, int]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT f.event_id, e.depth FROM forward_extremities f "
            "JOIN events e ON e.event_id = f.event_id WHERE f.room_id = %s",
            [room_id],
        )
        return dict(cur.fetchall())
