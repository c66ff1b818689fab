"""Directory and conveniences: OpenID tokens (the room and user directories need no table of
their own: they read rooms, aliases, current state and profiles)."""

from django.db import models

from homeserver.models.accounts import Account


class OpenIdToken(models.Model):
    """Spec: client-server API "OpenID": a token only valid for the federation
    `GET /openid/userinfo`. Only its SHA-256 (hex) is stored, like access tokens."""

    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        Account, to_field="user_id", db_column="user_id", on_delete=models.CASCADE
    )
    valid_until_ms = models.BigIntegerField()
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "openid_tokens"
        indexes = [models.Index(fields=["valid_until_ms"], name="openid_tokens_expiry")]

    def __str__(self) -> str:
        return f"openid token {self.pk} of {self.user_id}"
