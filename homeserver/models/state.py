from django.db import models


class StateGroup(models.Model):
    """A snapshot of room state, stored as a delta against `prev_group` (or whole, if NULL).

    A message creates no group (it shares its predecessor's); a state event creates a group of
    one entry on top of the previous one, so a message in a room of 10,000 members copies nothing.
    Chains are cut into a full snapshot every DELTA_CHAIN_MAX links to bound reads.
    """

    room_id = models.CharField(max_length=255)
    prev_group = models.BigIntegerField(null=True)
    chain_length = models.IntegerField(default=0)

    class Meta:
        db_table = "state_groups"


class StateGroupEntry(models.Model):
    state_group = models.BigIntegerField()
    type = models.CharField(max_length=255)
    state_key = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)

    class Meta:
        db_table = "state_group_entries"
        indexes = [models.Index(fields=["state_group"], name="sge_group")]


class CurrentState(models.Model):
    """The room's current state, denormalised for the queries every request makes.

    `membership` is set for m.room.member rows so "which rooms is this user in" is an index scan.
    """

    room_id = models.CharField(max_length=255)
    type = models.CharField(max_length=255)
    state_key = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)
    membership = models.CharField(max_length=32, null=True)
    stream_ordering = models.BigIntegerField()

    class Meta:
        db_table = "current_state"
        constraints = [
            models.UniqueConstraint(
                fields=["room_id", "type", "state_key"], name="current_state_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["state_key", "membership"], name="current_state_member"),
        ]
