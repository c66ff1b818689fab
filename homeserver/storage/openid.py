"""OpenID tokens (hashed) for the federation userinfo exchange."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.models import OpenIdToken


@dataclass(frozen=True)
class OpenIdTokenRecord:
    user_id: str
    valid_until_ms: int
    user_deactivated: bool


def insert_token(user_id: str, token_hash: str, valid_until_ms: int, now: int) -> None:
    OpenIdToken.objects.create(
        user_id=user_id, token_hash=token_hash, valid_until_ms=valid_until_ms, created_ts=now
    )


def lookup_token(token_hash: str) -> OpenIdTokenRecord | None:
    row = (
        OpenIdToken.objects.filter(token_hash=token_hash)
        .values_list("user_id", "valid_until_ms", "user__deactivated")
        .first()
    )
    return OpenIdTokenRecord(*row) if row else None


def delete_expired(now: int) -> int:
    deleted, _ = OpenIdToken.objects.filter(valid_until_ms__lt=now).delete()
    return deleted
