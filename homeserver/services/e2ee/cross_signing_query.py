"""Cross-signing keys and signatures as /keys/query shows them to one requester.

Spec: client-server API "Cross-signing", "Key and signature security": to avoid leaking social
graphs a user sees signatures made by a user about their own keys (self-signing key on devices,
master key on self-signing/user-signing keys, devices on the master key) and signatures made
by themselves, but never signatures made by another user's user-signing key. The user-signing
key itself is returned only to its owner.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeserver.storage import e2ee_cross_signing as cs_store

SignatureMap = dict[tuple[str, str], dict[str, dict[str, str]]]


def visible_signatures(requester: str, targets: Iterable[tuple[str, str]]) -> SignatureMap:
    """(target user, target key id) -> {signer user: {signer key id: signature}}."""
    out: SignatureMap = {}
    for s in cs_store.signatures_on(targets):
        if s.signer_user_id not in (s.target_user_id, requester):
            continue
        target = out.setdefault((s.target_user_id, s.target_key_id), {})
        target.setdefault(s.signer_user_id, {})[s.signer_key_id] = s.signature
    return out


def with_signatures(obj: dict[str, Any], extra: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A copy of `obj` with `extra` ({user_id: {key_id: signature}}) merged into signatures."""
    out = dict(obj)
    sigs = {u: dict(s) for u, s in (obj.get("signatures") or {}).items()}
    for signer, by_key in extra.items():
        sigs.setdefault(signer, {}).update(by_key)
    if sigs:
        out["signatures"] = sigs
    return out


def add_cross_signing(requester: str,
                      cross: dict[str, dict[str, cs_store.StoredCrossSigningKey]],
                      sigs: SignatureMap, result: dict[str, Any]) -> None:
    """Fill master_keys / self_signing_keys / user_signing_keys of a /keys/query response."""
    for user_id, keys in cross.items():
        master = keys.get(cs_store.MASTER)
        if master is not None:
            result["master_keys"][user_id] = with_signatures(
                master.key, sigs.get((user_id, master.public_key), {})
            )
        ssk = keys.get(cs_store.SELF_SIGNING)
        if ssk is not None:
            result["self_signing_keys"][user_id] = ssk.key
        usk = keys.get(cs_store.USER_SIGNING)
        if usk is not None and user_id == requester:
            result["user_signing_keys"][user_id] = usk.key
