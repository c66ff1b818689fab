"""Cross-signing keys and the signatures uploaded through /keys/signatures/upload."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from homeserver.models import CrossSigningKey, KeySignature
from homeserver.storage.e2ee_keys import dump, load

MASTER = "master"
SELF_SIGNING = "self_signing"
USER_SIGNING = "user_signing"
KEY_TYPES = (MASTER, SELF_SIGNING, USER_SIGNING)


@dataclass(frozen=True)
class StoredCrossSigningKey:
    user_id: str
    key_type: str
    public_key: str
    key: dict[str, Any]  # the CrossSigningKey object as uploaded

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.public_key}"


@dataclass(frozen=True)
class Signature:
    signer_user_id: str
    signer_key_id: str
    target_user_id: str
    target_key_id: str
    signature: str


def cross_signing_keys(user_ids: Iterable[str]) -> dict[str, dict[str, StoredCrossSigningKey]]:
    """user_id -> key_type -> key."""
    out: dict[str, dict[str, StoredCrossSigningKey]] = {}
    rows = CrossSigningKey.objects.filter(user_id__in=list(user_ids)).values_list(
        "user_id", "key_type", "public_key", "key_json"
    )
    for user_id, key_type, public_key, text in rows:
        out.setdefault(user_id, {})[key_type] = StoredCrossSigningKey(
            user_id, key_type, public_key, load(text)
        )
    return out


def put_cross_signing_key(user_id: str, key_type: str, public_key: str, key: dict[str, Any],
                          stream_ordering: int) -> None:
    CrossSigningKey.objects.update_or_create(
        user_id=user_id, key_type=key_type,
        defaults={"public_key": public_key, "key_json": dump(key),
                  "stream_ordering": stream_ordering},
    )


def add_signatures(signatures: Iterable[Signature]) -> None:
    for s in signatures:
        KeySignature.objects.update_or_create(
            signer_user_id=s.signer_user_id, signer_key_id=s.signer_key_id,
            target_user_id=s.target_user_id, target_key_id=s.target_key_id,
            defaults={"signature": s.signature},
        )


def signatures_on(targets: Iterable[tuple[str, str]]) -> list[Signature]:
    """Signatures whose (target_user_id, target_key_id) is one of `targets`."""
    targets = list(targets)
    if not targets:
        return []
    by_user: dict[str, set[str]] = {}
    for user_id, key_id in targets:
        by_user.setdefault(user_id, set()).add(key_id)
    cond = Q()
    for user_id, key_ids in by_user.items():
        cond |= Q(target_user_id=user_id, target_key_id__in=key_ids)
    rows = KeySignature.objects.filter(cond).values_list(
        "signer_user_id", "signer_key_id", "target_user_id", "target_key_id", "signature"
    )
    return [Signature(*r) for r in rows]


def delete_signatures_on(user_id: str, target_key_ids: list[str]) -> None:
    KeySignature.objects.filter(target_user_id=user_id, target_key_id__in=target_key_ids).delete()
