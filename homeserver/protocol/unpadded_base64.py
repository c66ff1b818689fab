"""Unpadded Base64, the encoding of every binary value (keys, signatures, hashes) in Matrix.

Spec: appendices, "Unpadded Base64" and "URL-safe unpadded Base64".

Decoding accepts input with or without `=` padding (the spec says implementations SHOULD), but
is otherwise strict: characters outside the alphabet, whitespace and misplaced padding are
rejected, and each decoder accepts only its own alphabet. Non-zero trailing bits in the last
character are tolerated; the spec's own test-vector seed has them.
"""

from __future__ import annotations

import binascii

# bytes.translate tables between the standard alphabet and the URL-safe one.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def encode_base64(data: bytes) -> str:
    """Standard-alphabet Base64 of `data` without `=` padding."""
    # Spec: appendices, Unpadded Base64: RFC 4648 Base64 with the "=" padding omitted.
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").decode("ascii")


def encode_base64_urlsafe(data: bytes) -> str:
    """URL-safe Base64 (`-` and `_` for values 62 and 63) of `data` without padding."""
    # Spec: appendices, URL-safe unpadded Base64.
    encoded = binascii.b2a_base64(data, newline=False).rstrip(b"=")
    return encoded.translate(_TO_URLSAFE).decode("ascii")


def decode_base64(text: str) -> bytes:
    """Decode standard Base64, padded or not. Raises ValueError on malformed input."""
    raw = _ascii(text)
    if b"-" in raw or b"_" in raw:
        raise ValueError("invalid Base64: URL-safe characters in standard Base64")
    return _decode(raw)


def decode_base64_urlsafe(text: str) -> bytes:
    """Decode URL-safe Base64, padded or not. Raises ValueError on malformed input."""
    raw = _ascii(text)
    if b"+" in raw or b"/" in raw:
        raise ValueError("invalid Base64: standard-alphabet characters in URL-safe Base64")
    return _decode(raw.translate(_FROM_URLSAFE))


def _ascii(text: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"invalid Base64: expected a string, got {type(text).__name__}")
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("invalid Base64: non-ASCII characters") from None


def _decode(raw: bytes) -> bytes:
    # Spec: appendices, Unpadded Base64: decoders SHOULD accept input with or without padding.
    # Re-pad to a multiple of four; already padded input needs nothing added.
    padded = raw + b"=" * (-len(raw) % 4)
    try:
        return binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid Base64: {exc}") from None
