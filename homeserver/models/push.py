from django.db import models


class PushRuleSet(models.Model):
    """A user's own push rules and their changes to the server-default rules, as one compact
    JSON document (see protocol/push_rules_defaults.py). Users without a row have the defaults."""

    user_id = models.CharField(max_length=255, primary_key=True)
    data = models.JSONField()

    class Meta:
        db_table = "push_rulesets"


class Pusher(models.Model):
    """Spec: client-server API POST /pushers/set. Belongs to the device that created it and goes
    with it (logout, device deletion)."""

    user_id = models.CharField(max_length=255)
    device = models.ForeignKey(
        "homeserver.Device", null=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=16)
    app_id = models.CharField(max_length=64)
    pushkey = models.CharField(max_length=512)
    app_display_name = models.CharField(max_length=255)
    device_display_name = models.CharField(max_length=255)
    profile_tag = models.CharField(max_length=255, default="")
    lang = models.CharField(max_length=64)
    data = models.JSONField()
    pushkey_ts = models.BigIntegerField()  # seconds (spec: push gateway API devices.pushkey_ts)

    class Meta:
        db_table = "pushers"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "app_id", "pushkey"], name="pushers_uniq")
        ]
        indexes = [models.Index(fields=["app_id", "pushkey"], name="pushers_app_key")]


class EventPushAction(models.Model):
    """One event that notifies one user (push rules said "notify"), written in the transaction
    that persists the event. Unread counts are these rows after the user's read marks;
    GET /notifications lists them."""

    user_id = models.CharField(max_length=255)
    room_id = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)
    stream_ordering = models.BigIntegerField()
    thread_id = models.CharField(max_length=255, default="main")
    highlight = models.BooleanField(default=False)
    actions = models.JSONField()
    ts = models.BigIntegerField()

    class Meta:
        db_table = "event_push_actions"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "event_id"], name="epa_user_event_uniq")
        ]
        indexes = [
            models.Index(fields=["user_id", "room_id", "stream_ordering"], name="epa_user_room"),
            models.Index(fields=["user_id", "stream_ordering"], name="epa_user_stream"),
        ]
