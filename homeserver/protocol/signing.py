"""ed25519 signing keys, signed JSON and signed events.

Spec: appendices, "Signing JSON", "Signing Details", "Checking for a Signature"; server-server
API, "Signing Events" and the `verify_keys` definition (key versions are `[a-zA-Z0-9_]`).

Key file format (one key per line, compatible with Synapse's signing.key files):
`ed25519 <version> <unpadded standard Base64 of the 32-byte seed>`.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing

from homeserver.protocol.canonical_json import encode_canonical_json
from homeserver.protocol.hashing import add_content_hash
from homeserver.protocol.identifiers import ServerName
from homeserver.protocol.redaction import redact_pdu
from homeserver.protocol.room_versions import RoomVersion
from homeserver.protocol.unpadded_base64 import decode_base64, encode_base64

ED25519 = "ed25519"
# Spec: server-server API, keys definition: "The version must have characters matching the
# regular expression [a-zA-Z0-9_]".
_KEY_VERSION = re.compile(r"[a-zA-Z0-9_]+")
_VERSION_ALPHABET = string.ascii_letters + string.digits + "_"
_GENERATED_VERSION_LENGTH = 8
_SEED_BYTES = 32
# Spec: appendices, Signing Details: signatures and unsigned data are not covered.
_NOT_SIGNED = frozenset({"signatures", "unsigned"})


class SignatureError(ValueError):
    """A signature is missing, malformed, from an unsupported algorithm, or does not verify."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A server's ed25519 signing key and its version (the part after `ed25519:`)."""

    version: str
    nacl_key: nacl.signing.SigningKey

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not _KEY_VERSION.fullmatch(self.version):
            raise ValueError(f"key version {self.version!r} must match [a-zA-Z0-9_]+")

    @classmethod
    def from_seed(cls, version: str, seed: bytes) -> SigningKey:
        if len(seed) != _SEED_BYTES:
            raise ValueError(f"an ed25519 seed is {_SEED_BYTES} bytes, not {len(seed)}")
        return cls(version, nacl.signing.SigningKey(seed))

    @property
    def key_id(self) -> str:
        # Spec: appendices, Signing Details: key id = signing algorithm + ":" + key identifier.
        return f"{ED25519}:{self.version}"

    @property
    def verify_key_bytes(self) -> bytes:
        return bytes(self.nacl_key.verify_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached ed25519 signature of `message`."""
        return self.nacl_key.sign(message).signature

    def __repr__(self) -> str:
        # Never let the seed reach a log line.
        return f"SigningKey({self.key_id!r}, public={public_key_base64(self)!r})"


def generate_signing_key(version: str | None = None) -> SigningKey:
    """A new random key; without `version`, a random 8-character `[a-zA-Z0-9_]` one."""
    if version is None:
        version = "".join(
            secrets.choice(_VERSION_ALPHABET) for _ in range(_GENERATED_VERSION_LENGTH)
        )
    return SigningKey(version, nacl.signing.SigningKey.generate())


def encode_signing_key_file(key: SigningKey) -> str:
    """One key-file line (with its newline) holding the key's secret seed."""
    return f"{ED25519} {key.version} {encode_base64(bytes(key.nacl_key))}\n"


def decode_signing_key_file(text: str) -> list[SigningKey]:
    """All keys in a key file; blank lines are skipped. Errors name the line, never the seed."""
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise ValueError(f"signing key line {number}: expected 'ed25519 <version> <seed>'")
        algorithm, version, seed_b64 = fields
        if algorithm != ED25519:
            raise ValueError(f"signing key line {number}: unsupported algorithm {algorithm!r}")
        try:
            seed = decode_base64(seed_b64)
        except ValueError:
            raise ValueError(f"signing key line {number}: seed is not valid Base64") from None
        try:
            keys.append(SigningKey.from_seed(version, seed))
        except ValueError as exc:
            raise ValueError(f"signing key line {number}: {exc}") from None
    return keys


def public_key_base64(key: SigningKey) -> str:
    """The verify key as published in `verify_keys` (unpadded standard Base64)."""
    return encode_base64(key.verify_key_bytes)


def sign_json(
    obj: dict[str, Any], server_name: str | ServerName, key: SigningKey
) -> dict[str, Any]:
    """A copy of `obj` with `server_name`'s signature by `key` merged into `signatures`.

    Spec: appendices, Signing Details: sign the canonical JSON of the object without
    `signatures` and `unsigned`, then add the signature under signatures[name][key_id], keeping
    existing signatures and `unsigned`. Only the top level (and `signatures`) are copied.
    """
    signed = dict(obj)
    existing = signed.pop("signatures", None)
    had_unsigned = "unsigned" in signed
    unsigned = signed.pop("unsigned", None)
    signature = encode_base64(key.sign(encode_canonical_json(signed)))
    signed["signatures"] = _merge_signature(existing, str(server_name), key.key_id, signature)
    if had_unsigned:
        signed["unsigned"] = unsigned
    return signed


def verify_signed_json(
    obj: dict[str, Any],
    server_name: str | ServerName,
    key_id: str,
    verify_key_bytes: bytes | nacl.signing.VerifyKey,
) -> None:
    """Raise SignatureError unless `obj` carries a valid signature by `server_name`'s `key_id`.

    Spec: appendices, Checking for a Signature (steps 1, 2, 4-7; step 3, finding the key, is
    the caller's job).
    """
    name = str(server_name)
    # Spec: Checking for a Signature, step 2: only algorithms we understand count.
    algorithm = key_id.partition(":")[0]
    if algorithm != ED25519:
        raise SignatureError(f"unsupported signing algorithm in key id {key_id!r}")
    # Spec: Checking for a Signature, step 1: the entity must have an entry in `signatures`.
    signatures = obj.get("signatures")
    entity = signatures.get(name) if isinstance(signatures, dict) else None
    if not isinstance(entity, dict):
        raise SignatureError(f"no signatures from {name!r}")
    signature_b64 = entity.get(key_id)
    if not isinstance(signature_b64, str):
        raise SignatureError(f"no signature from {name!r} with key {key_id!r}")
    # Spec: Checking for a Signature, step 4: undecodable signatures fail the check.
    try:
        signature = decode_base64(signature_b64)
    except ValueError:
        raise SignatureError(f"signature from {name!r} key {key_id!r} is not Base64") from None
    if len(signature) != 64:
        raise SignatureError(f"signature from {name!r} key {key_id!r} is not 64 bytes")
    try:
        verify_key = (
            verify_key_bytes
            if isinstance(verify_key_bytes, nacl.signing.VerifyKey)
            else nacl.signing.VerifyKey(verify_key_bytes)
        )
    except (TypeError, ValueError, nacl.exceptions.CryptoError):
        raise SignatureError(f"verify key for {name!r} {key_id!r} is not an ed25519 key") from None
    # Spec: Checking for a Signature, steps 5-7: drop signatures and unsigned, encode, verify.
    message = encode_canonical_json({k: v for k, v in obj.items() if k not in _NOT_SIGNED})
    try:
        verify_key.verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        raise SignatureError(f"signature from {name!r} key {key_id!r} does not verify") from None


def sign_event(
    pdu: dict[str, Any],
    room_version: RoomVersion,
    server_name: str | ServerName,
    key: SigningKey,
) -> dict[str, Any]:
    """A copy of `pdu` with its content hash set and `server_name`'s signature added.

    Spec: server-server API, Adding hashes and signatures to outgoing events: compute the
    content hash into `hashes`, redact, sign the redacted event, copy the signature back.
    """
    hashed = add_content_hash(pdu)
    # redact_pdu returns a fresh dict, so it can be trimmed in place for signing.
    redacted = redact_pdu(hashed, room_version)
    for field in _NOT_SIGNED:
        redacted.pop(field, None)
    signature = encode_base64(key.sign(encode_canonical_json(redacted)))
    hashed["signatures"] = _merge_signature(
        hashed.get("signatures"), str(server_name), key.key_id, signature
    )
    return hashed


def verify_event_signature(
    pdu: dict[str, Any],
    room_version: RoomVersion,
    server_name: str | ServerName,
    key_id: str,
    verify_key_bytes: bytes | nacl.signing.VerifyKey,
) -> None:
    """Raise SignatureError unless the redacted `pdu` is validly signed by `server_name`.

    Spec: server-server API, Validating hashes and signatures on received events: signatures
    are checked on the redacted event, so this passes for full and redacted copies alike. The
    content hash is checked separately (hashing.check_content_hash).
    """
    verify_signed_json(redact_pdu(pdu, room_version), server_name, key_id, verify_key_bytes)


def _merge_signature(
    existing: Any, server_name: str, key_id: str, signature: str
) -> dict[str, dict[str, str]]:
    if existing is None:
        existing = {}
    if not isinstance(existing, dict) or not isinstance(existing.get(server_name, {}), dict):
        raise ValueError("existing `signatures` is not an object of objects")
    return {**existing, server_name: {**existing.get(server_name, {}), key_id: signature}}
