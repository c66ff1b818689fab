from django.db import models


class Receipt(models.Model):
    """The latest receipt of one (room, user, receipt type, thread). Spec: client-server API
    "Receipts": each (user, receipt type, thread) maps to a single event. `thread_id` "" is an
    unthreaded receipt; `stream_ordering` is the stream position of the receipt's last change
    (what /sync pages by), `event_stream_ordering` the position of the event it points at."""

    room_id = models.CharField(max_length=255)
    user_id = models.CharField(max_length=255)
    receipt_type = models.CharField(max_length=64)  # m.read or m.read.private
    thread_id = models.CharField(max_length=255, default="")
    event_id = models.CharField(max_length=255)
    event_stream_ordering = models.BigIntegerField()
    ts = models.BigIntegerField()
    stream_ordering = models.BigIntegerField()

    class Meta:
        db_table = "receipts"
        constraints = [
            models.UniqueConstraint(
                fields=["room_id", "user_id", "receipt_type", "thread_id"], name="receipts_uniq"
            )
        ]
        indexes = [models.Index(fields=["room_id", "stream_ordering"], name="receipts_room_stream")]


class ReadMark(models.Model):
    """Where a user has read up to in a room, per thread, for notification counts: the furthest
    of their m.read / m.read.private receipts and their own latest event (spec "Marking
    notifications as read": sending an event marks what precedes it as read). `thread_id` ""
    covers the whole room (unthreaded receipts), "main" the main timeline, else a thread root."""

    user_id = models.CharField(max_length=255)
    room_id = models.CharField(max_length=255)
    thread_id = models.CharField(max_length=255, default="")
    stream_ordering = models.BigIntegerField()

    class Meta:
        db_table = "read_marks"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "room_id", "thread_id"],
                                    name="read_marks_uniq")
        ]
