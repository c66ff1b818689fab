"""End-to-end encryption support: device and cross-signing keys, one-time and fallback keys,
signatures, device-list changes, to-device inboxes and server-side key backups.

Spec: client-server API "End-to-End Encryption" and "Send-to-Device messaging". The server only
stores and relays public keys, signatures and encrypted blobs; it never sees a private key or a
plaintext. Client-supplied JSON is kept as text (canonical JSON) rather than in a JSON column:
signatures are computed over exact values, and PostgreSQL's jsonb would refuse some of them
(NUL characters).
"""

from django.db import models


class DeviceKeys(models.Model):
    """A device's identity keys as uploaded (DeviceKeys object, without `unsigned`)."""

    user_id = models.CharField(max_length=255)
    device_id = models.CharField(max_length=255)
    ed25519_key = models.CharField(max_length=64)
    key_json = models.TextField()
    updated_ts = models.BigIntegerField()

    class Meta:
        db_table = "e2e_device_keys"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "device_id"], name="e2e_device_keys_uniq")
        ]


class OneTimeKey(models.Model):
    """An unclaimed one-time key. The row id is the upload order: claims take the oldest."""

    user_id = models.CharField(max_length=255)
    device_id = models.CharField(max_length=255)
    algorithm = models.CharField(max_length=128)
    key_id = models.CharField(max_length=255)
    key_json = models.TextField()

    class Meta:
        db_table = "e2e_one_time_keys"
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "device_id", "algorithm", "key_id"], name="e2e_otk_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["user_id", "device_id", "algorithm", "id"], name="e2e_otk_claim")
        ]


class FallbackKey(models.Model):
    """At most one fallback key per device and algorithm; `used` once handed out by a claim."""

    user_id = models.CharField(max_length=255)
    device_id = models.CharField(max_length=255)
    algorithm = models.CharField(max_length=128)
    key_id = models.CharField(max_length=255)
    key_json = models.TextField()
    used = models.BooleanField(default=False)

    class Meta:
        db_table = "e2e_fallback_keys"
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "device_id", "algorithm"], name="e2e_fallback_uniq"
            )
        ]


class CrossSigningKey(models.Model):
    """A user's current master, self-signing or user-signing key (CrossSigningKey object)."""

    user_id = models.CharField(max_length=255)
    key_type = models.CharField(max_length=32)  # master | self_signing | user_signing
    public_key = models.CharField(max_length=64)
    key_json = models.TextField()
    stream_ordering = models.BigIntegerField()

    class Meta:
        db_table = "e2e_cross_signing_keys"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "key_type"], name="e2e_cs_keys_uniq")
        ]


class KeySignature(models.Model):
    """A signature uploaded through /keys/signatures/upload: `signer_user_id`'s key
    `signer_key_id` (`ed25519:<public key or device id>`) signed `target_user_id`'s key
    `target_key_id` (a device ID, or a master key's public key)."""

    signer_user_id = models.CharField(max_length=255)
    signer_key_id = models.CharField(max_length=255)
    target_user_id = models.CharField(max_length=255)
    target_key_id = models.CharField(max_length=255)
    signature = models.CharField(max_length=128)

    class Meta:
        db_table = "e2e_key_signatures"
        constraints = [
            models.UniqueConstraint(
                fields=["signer_user_id", "signer_key_id", "target_user_id", "target_key_id"],
                name="e2e_key_signatures_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["target_user_id", "target_key_id"], name="e2e_sig_target")
        ]


class DeviceListChange(models.Model):
    """A user's devices or keys changed at `stream_ordering` (feeds device_lists.changed in
    /sync and GET /keys/changes)."""

    user_id = models.CharField(max_length=255)
    stream_ordering = models.BigIntegerField()

    class Meta:
        db_table = "e2e_device_list_changes"
        indexes = [
            models.Index(fields=["stream_ordering"], name="e2e_dlc_stream"),
            models.Index(fields=["user_id", "stream_ordering"], name="e2e_dlc_user_stream"),
        ]


class ToDeviceMessage(models.Model):
    """A pending send-to-device message. `delivered_in` is the stream position of the /sync
    response that last carried it; a later /sync whose `since` has reached it acknowledges and
    deletes it."""

    user_id = models.CharField(max_length=255)
    device_id = models.CharField(max_length=255)
    sender = models.CharField(max_length=255)
    type = models.CharField(max_length=255)
    content_json = models.TextField()
    stream_ordering = models.BigIntegerField()
    delivered_in = models.BigIntegerField(null=True)

    class Meta:
        db_table = "e2e_to_device_messages"
        indexes = [
            models.Index(
                fields=["user_id", "device_id", "stream_ordering"], name="e2e_to_device_inbox"
            )
        ]


class RoomKeyBackup(models.Model):
    """A key backup version; the row id is the version. Deleted versions keep their row so a
    version string is never reused and a repeated DELETE still succeeds."""

    user_id = models.CharField(max_length=255)
    algorithm = models.CharField(max_length=255)
    auth_data_json = models.TextField()
    etag = models.BigIntegerField(default=0)
    deleted = models.BooleanField(default=False)
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "e2e_room_key_backups"
        indexes = [models.Index(fields=["user_id", "deleted"], name="e2e_backup_user")]


class RoomKeyBackupSession(models.Model):
    """One backed-up Megolm session key (KeyBackupData; session_data is opaque ciphertext)."""

    backup = models.ForeignKey(RoomKeyBackup, on_delete=models.CASCADE, related_name="sessions")
    room_id = models.CharField(max_length=255)
    session_id = models.CharField(max_length=255)
    first_message_index = models.BigIntegerField()
    forwarded_count = models.BigIntegerField()
    is_verified = models.BooleanField()
    session_data_json = models.TextField()

    class Meta:
        db_table = "e2e_room_key_backup_sessions"
        constraints = [
            models.UniqueConstraint(
                fields=["backup", "room_id", "session_id"], name="e2e_backup_session_uniq"
            )
        ]
