from django.db import models


class Presence(models.Model):
    """A local user's presence. Spec: client-server API "Presence". `stream_ordering` is the
    position of the last change others can see (state or status message)."""

    user_id = models.CharField(max_length=255, primary_key=True)
    state = models.CharField(max_length=16)  # online, unavailable, offline
    status_msg = models.TextField(null=True)
    last_active_ts = models.BigIntegerField()
    stream_ordering = models.BigIntegerField()

    class Meta:
        db_table = "presence"
        indexes = [models.Index(fields=["stream_ordering"], name="presence_stream")]
