from django.db import models


class Room(models.Model):
    """A room this server knows. The row is also the per-room lock (SELECT ... FOR UPDATE)."""

    room_id = models.CharField(max_length=255, primary_key=True)
    room_version = models.CharField(max_length=32)
    creator = models.CharField(max_length=255)
    created_ts = models.BigIntegerField()
    is_public = models.BooleanField(default=False)  # published in the local room directory
    # The state group of the room's current (resolved) state; CurrentState mirrors it.
    current_state_group = models.BigIntegerField(null=True)

    class Meta:
        db_table = "rooms"


class RoomAlias(models.Model):
    alias = models.CharField(max_length=255, primary_key=True)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="aliases")
    creator = models.CharField(max_length=255)

    class Meta:
        db_table = "room_aliases"


class ForgottenRoom(models.Model):
    user_id = models.CharField(max_length=255)
    room_id = models.CharField(max_length=255)

    class Meta:
        db_table = "forgotten_rooms"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "room_id"], name="forgotten_uniq")
        ]
