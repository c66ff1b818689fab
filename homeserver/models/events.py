from django.db import models


class Event(models.Model):
    """A PDU stored whole (canonical JSON, signed) with the columns queries need.

    `stream_ordering` is the server-wide order in which events became visible to clients; it is
    NULL for outliers (events we hold for auth chains but not in the room's timeline).
    """

    event_id = models.CharField(max_length=255, unique=True)
    room_id = models.CharField(max_length=255)
    type = models.CharField(max_length=255)
    state_key = models.CharField(max_length=255, null=True)
    sender = models.CharField(max_length=255)
    depth = models.BigIntegerField()
    stream_ordering = models.BigIntegerField(null=True, unique=True)
    origin_server_ts = models.BigIntegerField()
    outlier = models.BooleanField(default=False)
    rejection_reason = models.TextField(null=True)
    # Accepted into the room graph but not shown to clients: "soft_failed" (spec: server-server
    # API "Soft failure") or a policy's reason (e.g. plaintext under an E2EE-only profile).
    withheld_reason = models.TextField(null=True)
    redacted_by = models.CharField(max_length=255, null=True)
    # For state events: the event this one replaced in the room state (clients get its content
    # as unsigned.prev_content).
    replaces_state = models.CharField(max_length=255, null=True)
    # The state group holding the room state AFTER this event (BEFORE it, if it is rejected).
    state_group = models.BigIntegerField(null=True)
    json = models.TextField()

    class Meta:
        db_table = "events"
        indexes = [
            models.Index(fields=["room_id", "stream_ordering"], name="events_room_stream"),
            models.Index(fields=["room_id", "depth"], name="events_room_depth"),
            models.Index(fields=["room_id", "type", "state_key"], name="events_room_state"),
        ]


class EventEdge(models.Model):
    """prev_events: the DAG edges."""

    event_id = models.CharField(max_length=255)
    prev_event_id = models.CharField(max_length=255)
    room_id = models.CharField(max_length=255)

    class Meta:
        db_table = "event_edges"
        constraints = [
            models.UniqueConstraint(fields=["event_id", "prev_event_id"], name="event_edges_uniq")
        ]
        indexes = [models.Index(fields=["prev_event_id"], name="event_edges_prev")]


class EventAuthEdge(models.Model):
    event_id = models.CharField(max_length=255)
    auth_event_id = models.CharField(max_length=255)

    class Meta:
        db_table = "event_auth_edges"
        constraints = [
            models.UniqueConstraint(fields=["event_id", "auth_event_id"], name="event_auth_uniq")
        ]


class ForwardExtremity(models.Model):
    """Events in a room with no known successors: the prev_events of the next local event."""

    room_id = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)

    class Meta:
        db_table = "forward_extremities"
        constraints = [
            models.UniqueConstraint(fields=["room_id", "event_id"], name="fwd_extrem_uniq")
        ]


class EventRelation(models.Model):
    """Spec: client-server API "Forming relationships between events" (m.relates_to)."""

    event_id = models.CharField(max_length=255, unique=True)
    relates_to_id = models.CharField(max_length=255)
    rel_type = models.CharField(max_length=255)
    room_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=255)

    class Meta:
        db_table = "event_relations"
        indexes = [models.Index(fields=["relates_to_id", "rel_type"], name="event_rel_target")]
