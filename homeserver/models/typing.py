from django.db import models


class TypingState(models.Model):
    """Whether a user is typing in a room. Spec: client-server API "Typing Notifications".

    A row is kept after the user stops (expires_ts = 0) so an incremental /sync can tell that
    the room's typing list changed: `stream_ordering` is the position of the last change."""

    room_id = models.CharField(max_length=255)
    user_id = models.CharField(max_length=255)
    expires_ts = models.BigIntegerField(default=0)  # ms since the epoch; 0 = not typing
    stream_ordering = models.BigIntegerField()

    class Meta:
        db_table = "typing_states"
        constraints = [
            models.UniqueConstraint(fields=["room_id", "user_id"], name="typing_room_user_uniq")
        ]
        indexes = [models.Index(fields=["expires_ts"], name="typing_expires")]
