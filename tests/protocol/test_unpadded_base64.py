"""Unpadded Base64 against the spec's examples (appendices, Unpadded Base64)."""

from __future__ import annotations

import pytest

from homeserver.protocol.unpadded_base64 import (
    decode_base64,
    decode_base64_urlsafe,
    encode_base64,
    encode_base64_urlsafe,
)

# Spec: appendices, Unpadded Base64, examples.
SPEC_EXAMPLES = [
    (b"", ""),
    (b"f", "Zg"),
    (b"fo", "Zm8"),
    (b"foo", "Zm9v"),
    (b"foob", "Zm9vYg"),
    (b"fooba", "Zm9vYmE"),
    (b"foobar", "Zm9vYmFy"),
]


@pytest.mark.parametrize(("raw", "encoded"), SPEC_EXAMPLES)
def test_spec_examples_encode(raw: bytes, encoded: str) -> None:
    assert encode_base64(raw) == encoded
    # No character of these examples is affected by the alphabet change.
    assert encode_base64_urlsafe(raw) == encoded


@pytest.mark.parametrize(("raw", "encoded"), SPEC_EXAMPLES)
def test_spec_examples_decode_unpadded_and_padded(raw: bytes, encoded: str) -> None:
    padded = encoded + "=" * (-len(encoded) % 4)
    assert decode_base64(encoded) == raw
    assert decode_base64(padded) == raw
    assert decode_base64_urlsafe(encoded) == raw
    assert decode_base64_urlsafe(padded) == raw


def test_alphabets_differ_only_in_62_and_63() -> None:
    # 0xfb 0xff -> values 62, 63, 60: "+/8" in standard, "-_8" in URL-safe Base64.
    assert encode_base64(b"\xfb\xff") == "+/8"
    assert encode_base64_urlsafe(b"\xfb\xff") == "-_8"
    assert decode_base64("+/8") == b"\xfb\xff"
    assert decode_base64_urlsafe("-_8") == b"\xfb\xff"


def test_each_decoder_accepts_only_its_alphabet() -> None:
    with pytest.raises(ValueError, match="URL-safe characters"):
        decode_base64("-_8")
    with pytest.raises(ValueError, match="standard-alphabet"):
        decode_base64_urlsafe("+/8")


def test_spec_signing_seed_with_nonzero_trailing_bits_decodes() -> None:
    # Spec: appendices, Cryptographic Test Vectors. The final "1" carries non-zero bits past
    # the 32nd byte; decoding must still succeed (and re-encoding gives the canonical "0").
    seed = decode_base64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
    assert len(seed) == 32
    assert encode_base64(seed) == "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0"


@pytest.mark.parametrize(
    "bad",
    [
        "Z",  # 1 mod 4 characters can never be valid
        "Zg!",  # outside the alphabet
        "Zm 9v",  # whitespace
        "Zm9v\n",  # trailing newline
        "Zg===",  # too much padding
        "=Zg",  # leading padding
        "Zé",  # non-ASCII
    ],
)
def test_decode_rejects_malformed_input(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid Base64"):
        decode_base64(bad)
    with pytest.raises(ValueError, match="invalid Base64"):
        decode_base64_urlsafe(bad)


def test_decode_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="expected a string"):
        decode_base64(b"Zg")  # type: ignore[arg-type]


@pytest.mark.parametrize("length", range(0, 34))
def test_round_trip_every_length(length: int) -> None:
    raw = bytes((i * 37 + 250) % 256 for i in range(length))
    assert decode_base64(encode_base64(raw)) == raw
    assert decode_base64_urlsafe(encode_base64_urlsafe(raw)) == raw
    assert "=" not in encode_base64(raw)
    assert "=" not in encode_base64_urlsafe(raw)
