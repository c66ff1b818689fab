"""Authorization of an invite that redeems an m.room.third_party_invite.

Spec: rooms v12 auth rules 5.4.1.2-5.4.1.8 (v8-v11 4.4.1.x, v6-v7 4.3.1.x, v1-v5 5.3.1.x); the
signature is checked as in appendices "Signing JSON" against the ed25519 public keys of the
m.room.third_party_invite event (`public_key` and `public_keys[].public_key`, unpadded base64 in
the standard or URL-safe alphabet, per the event's schema).
"""

from __future__ import annotations

from typing import Any

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import VerifyKey

from homeserver.protocol.auth_context import THIRD_PARTY_INVITE, AuthError, AuthState
from homeserver.protocol.canonical_json import CanonicalJSONError, encode_canonical_json
from homeserver.protocol.unpadded_base64 import decode_base64, decode_base64_urlsafe


def check_third_party_invite(state: AuthState, target: str, third_party_invite: Any) -> None:
    """Return if `content.third_party_invite` authorises the invite of `target`, else raise."""
    # Spec: rooms v12 5.4.1.2: it must have `signed`.
    if type(third_party_invite) is not dict or "signed" not in third_party_invite:
        raise AuthError("third_party_invite has no signed property")
    signed = third_party_invite["signed"]
    # Spec: rooms v12 5.4.1.3: `signed` must have `mxid` and `token`.
    if type(signed) is not dict or "mxid" not in signed or "token" not in signed:
        raise AuthError("third_party_invite.signed lacks mxid or token")
    # Spec: rooms v12 5.4.1.4: `mxid` must be the invited user.
    if signed["mxid"] != target:
        raise AuthError("third_party_invite.signed.mxid does not match the state_key")
    # Spec: rooms v12 5.4.1.5: an m.room.third_party_invite with state_key == token must exist.
    token = signed["token"]
    invite = state.get((THIRD_PARTY_INVITE, token)) if type(token) is str else None
    if invite is None:
        raise AuthError("no m.room.third_party_invite event for the token")
    # Spec: rooms v12 5.4.1.6: only the user who issued the third party invite can redeem it.
    if invite.sender != state.sender:
        raise AuthError("sender did not send the m.room.third_party_invite")
    # Spec: rooms v12 5.4.1.7-5.4.1.8: allow iff a signature in `signed` matches one of its keys.
    if not is_signed_by_invite_keys(signed, invite.content):
        raise AuthError("third_party_invite.signed is not signed by a key of the invite")


def is_signed_by_invite_keys(signed: dict[str, Any], invite_content: dict[str, Any]) -> bool:
    """Whether any ed25519 signature in `signed` verifies with any public key of the invite."""
    signatures = signed.get("signatures")
    if type(signatures) is not dict:
        return False
    keys = _public_keys(invite_content)
    if not keys:
        return False
    # Spec appendices "Signing JSON": the signed bytes are the canonical JSON of the object
    # without `signatures` and `unsigned`.
    unsigned = {k: v for k, v in signed.items() if k != "signatures" and k != "unsigned"}
    try:
        message = encode_canonical_json(unsigned)
    except (CanonicalJSONError, TypeError):
        return False
    for by_key_id in signatures.values():
        if type(by_key_id) is not dict:
            continue
        for key_id, encoded in by_key_id.items():
            if not (type(key_id) is str and key_id.startswith("ed25519:")):
                continue
            signature = _decode_unpadded_base64(encoded)
            if signature is None or len(signature) != 64:
                continue
            for key in keys:
                try:
                    key.verify(message, signature)
                except (BadSignatureError, CryptoError, ValueError):
                    continue
                return True
    return False


def _public_keys(invite_content: dict[str, Any]) -> list[VerifyKey]:
    encoded = []
    single = invite_content.get("public_key")
    if single is not None:
        encoded.append(single)
    listed = invite_content.get("public_keys")
    if type(listed) is list:
        encoded.extend(entry.get("public_key") for entry in listed if type(entry) is dict)
    keys = []
    for value in encoded:
        raw = _decode_unpadded_base64(value)
        if raw is not None and len(raw) == 32:
            keys.append(VerifyKey(raw))
    return keys


def _decode_unpadded_base64(value: Any) -> bytes | None:
    """Spec appendices "Unpadded Base64", standard or URL-safe alphabet; None if malformed."""
    if type(value) is not str:
        return None
    try:
        if "-" in value or "_" in value:
            return decode_base64_urlsafe(value)
        return decode_base64(value)
    except ValueError:
        return None
