"""Federation EDU state: the cache of other servers' users' device lists and cross-signing keys,
the device-list stream we publish for our own users, and inbound to-device deduplication.

Spec: server-server API "Device Management" (m.device_list_update, stream_id / prev_id,
GET /user/devices), "End-to-End Encryption" (m.signing_key_update) and "Send-to-device
messaging" (m.direct_to_device, message_id). Key objects are kept as canonical JSON text, as in
models.e2ee (signatures are computed over exact values).
"""

from django.db import models


class RemoteDeviceList(models.Model):
    """A remote user whose device list this server caches. `stream_id` is the last update we
    applied (the extremity prev_ids are checked against); `stale` means an update referred to a
    prev_id we never saw, so the list must be fetched again with GET /user/devices."""

    user_id = models.CharField(max_length=255, unique=True)
    stream_id = models.BigIntegerField()
    stale = models.BooleanField(default=False)
    updated_ts = models.BigIntegerField()

    class Meta:
        db_table = "federation_remote_device_lists"


class RemoteDevice(models.Model):
    """One cached device of a remote user; `keys_json` empty while the device has no keys."""

    user_id = models.CharField(max_length=255)
    device_id = models.CharField(max_length=255)
    display_name = models.TextField(null=True)
    keys_json = models.TextField(default="")

    class Meta:
        db_table = "federation_remote_devices"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "device_id"], name="fed_remote_device_uniq")
        ]


class RemoteCrossSigningKey(models.Model):
    """A remote user's master or self-signing key as their server published it."""

    user_id = models.CharField(max_length=255)
    key_type = models.CharField(max_length=32)  # master | self_signing
    key_json = models.TextField()

    class Meta:
        db_table = "federation_remote_cross_signing_keys"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "key_type"], name="fed_remote_csk_uniq")
        ]


class DeviceListOutbound(models.Model):
    """The last m.device_list_update stream_id sent for a local user (the next one's prev_id,
    and the stream_id GET /user/devices answers with)."""

    user_id = models.CharField(max_length=255, unique=True)
    stream_id = models.BigIntegerField()

    class Meta:
        db_table = "federation_device_list_outbound"


class InboundToDevice(models.Model):
    """m.direct_to_device message_ids already delivered, per origin (a retried transaction
    must not deliver a message twice)."""

    origin = models.CharField(max_length=255)
    message_id = models.CharField(max_length=255)
    received_ts = models.BigIntegerField()

    class Meta:
        db_table = "federation_inbound_to_device"
        constraints = [
            models.UniqueConstraint(fields=["origin", "message_id"], name="fed_in_to_device_uniq")
        ]
        indexes = [models.Index(fields=["received_ts"], name="fed_in_to_device_ts")]
