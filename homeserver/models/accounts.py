"""Accounts and sessions: local users, their devices and tokens, profiles, account data, filters.

Tokens are never stored: only their SHA-256 (hex) is, so a database dump grants no session.
Rows hang off `Account.user_id` (the Matrix user ID string) so most lookups need no join.
"""

from django.db import models


class Account(models.Model):
    user_id = models.CharField(max_length=255, unique=True)
    localpart = models.CharField(max_length=255)
    # Django's make_password() format; "" (or an unusable "!" hash) = no password login.
    password_hash = models.CharField(max_length=255, default="")
    is_admin = models.BooleanField(default=False)
    deactivated = models.BooleanField(default=False)
    erased = models.BooleanField(default=False)
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "accounts"

    def __str__(self) -> str:
        return self.user_id


class Device(models.Model):
    user = models.ForeignKey(
        Account, to_field="user_id", db_column="user_id", on_delete=models.CASCADE,
        related_name="devices",
    )
    device_id = models.CharField(max_length=255)
    display_name = models.CharField(max_length=512, default="")  # "" = none set
    last_seen_ts = models.BigIntegerField(null=True)
    last_seen_ip = models.CharField(max_length=64, default="")
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "devices"
        constraints = [
            models.UniqueConstraint(fields=["user", "device_id"], name="devices_user_device_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.device_id}"


class RefreshToken(models.Model):
    """Spec: client-server API "Refreshing access tokens". `next_token` is the token issued when
    this one was used; this one stays valid until that successor (or its access token) is used."""

    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        Account, to_field="user_id", db_column="user_id", on_delete=models.CASCADE
    )
    device = models.ForeignKey(Device, on_delete=models.CASCADE)
    next_token = models.ForeignKey("self", null=True, on_delete=models.SET_NULL, related_name="+")
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "refresh_tokens"

    def __str__(self) -> str:
        return f"refresh token {self.pk} of {self.user_id}"


class AccessToken(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        Account, to_field="user_id", db_column="user_id", on_delete=models.CASCADE
    )
    device = models.ForeignKey(Device, on_delete=models.CASCADE)
    # NULL = does not expire (clients that did not ask for refresh tokens).
    valid_until_ms = models.BigIntegerField(null=True)
    # The refresh token issued together with this access token, if any.
    refresh_token = models.ForeignKey(RefreshToken, null=True, on_delete=models.CASCADE)
    # False until first use; first use of a refreshed token revokes the predecessor refresh token.
    used = models.BooleanField(default=False)
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "access_tokens"

    def __str__(self) -> str:
        return f"access token {self.pk} of {self.user_id}"


class Profile(models.Model):
    user = models.OneToOneField(
        Account, to_field="user_id", db_column="user_id", on_delete=models.CASCADE,
        primary_key=True,
    )
    # "" = not set (the field is then absent from profile responses and member events).
    displayname = models.TextField(default="")
    avatar_url = models.TextField(default="")

    class Meta:
        db_table = "profiles"

    def __str__(self) -> str:
        return f"profile of {self.user_id}"


class AccountData(models.Model):
    """Spec: client-server API "Client Config". room_id "" = global account data."""

    user = models.ForeignKey(
        Account, to_field="user_id", db_column="user_id", on_delete=models.CASCADE
    )
    room_id = models.CharField(max_length=255, default="")
    type = models.CharField(max_length=255)
    content = models.JSONField()
    stream_ordering = models.BigIntegerField()

    class Meta:
        db_table = "account_data"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "room_id", "type"], name="account_data_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["user", "stream_ordering"], name="account_data_user_stream")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.room_id} {self.type}"


class Filter(models.Model):
    user = models.ForeignKey(
        Account, to_field="user_id", db_column="user_id", on_delete=models.CASCADE
    )
    filter_id = models.CharField(max_length=64)
    json = models.TextField()

    class Meta:
        db_table = "user_filters"
        constraints = [
            models.UniqueConstraint(fields=["user", "filter_id"], name="user_filters_uniq")
        ]

    def __str__(self) -> str:
        return f"filter {self.filter_id} of {self.user_id}"


class RegistrationToken(models.Model):
    """Spec: client-server API "Token-authenticated registration". `pending` counts UIA sessions
    that completed the token stage but have not registered yet; `completed` counts accounts."""

    token = models.CharField(max_length=64, unique=True)
    uses_allowed = models.IntegerField(null=True)  # NULL = unlimited
    pending = models.IntegerField(default=0)
    completed = models.IntegerField(default=0)
    expiry_time = models.BigIntegerField(null=True)  # ms since the epoch; NULL = never

    class Meta:
        db_table = "registration_tokens"

    def __str__(self) -> str:
        return f"registration token {self.pk}"


class UIASession(models.Model):
    """A user-interactive authentication session, bound to one operation (method + path)."""

    session_id = models.CharField(max_length=64, primary_key=True)
    operation = models.CharField(max_length=512)
    user_id = models.CharField(max_length=255, default="")  # "" for registration
    completed = models.JSONField(default=list)
    registration_token = models.CharField(max_length=64, default="")
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "uia_sessions"
        indexes = [models.Index(fields=["created_ts"], name="uia_sessions_created")]

    def __str__(self) -> str:
        return f"UIA session for {self.operation}"


class RegistrationNonce(models.Model):
    """Single-use nonces for shared-secret registration (/_synapse/admin/v1/register)."""

    nonce = models.CharField(max_length=64, primary_key=True)
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "registration_nonces"

    def __str__(self) -> str:
        return f"nonce created at {self.created_ts}"
