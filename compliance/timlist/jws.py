"""Verifying the signed TI-Messenger federation list: a JWS in compact serialization (RFC 7515
section 7.1) whose protected header carries the signer's certificate chain in `x5c` (RFC 7515
section 4.1.6: standard base64 DER, leaf first). Pure: no Django, no I/O.

Steps (REQUIREMENTS.md A_25537): parse the three parts; take `alg` from the header (ES256, RS256
or PS256 — RFC 7518 section 3; anything else, "none" included, is refused); refuse unknown
`crit` parameters; verify the signature with the leaf certificate's public key; then verify the
chain leaf -> x5c intermediates -> one of the configured trust anchors with
`cryptography.x509.verification.PolicyBuilder` (cryptography >= 45: the Rust path builder;
validity periods, basic constraints, key usage of the CAs and signature algorithms are checked
by its WebPKI CA profile; the leaf is checked for validity and chaining, its extensions are
permitted as they are, since a signing certificate is no TLS client or server certificate).
OCSP is not checked (no responder is reachable from here; see docs/federation.md).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

ALGORITHMS = ("ES256", "RS256", "PS256")
MAX_CHAIN = 5


class JwsError(ValueError):
    """The JWS is malformed, its signature is wrong, or its signer is not trusted."""


@dataclass(frozen=True)
class VerifiedJws:
    payload: bytes
    alg: str
    signer: str  # RFC 4514 subject of the leaf certificate
    anchor: str  # subject of the trust anchor the chain ends in


def _b64url(part: str, what: str) -> bytes:
    if not part or any(c in part for c in "=+/ \n"):
        raise JwsError(f"{what} is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise JwsError(f"{what} is not unpadded base64url") from None


def load_anchors(pem_blobs: list[bytes]) -> list[x509.Certificate]:
    anchors = [c for blob in pem_blobs for c in x509.load_pem_x509_certificates(blob)]
    if not anchors:
        raise JwsError("no trust anchor configured")
    return anchors


def _header(part: str) -> dict[str, Any]:
    try:
        header = json.loads(_b64url(part, "JWS header"))
    except ValueError:
        raise JwsError("JWS header is not JSON") from None
    if not isinstance(header, dict):
        raise JwsError("JWS header is not a JSON object")
    return header


def _chain(header: dict[str, Any]) -> list[x509.Certificate]:
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c or len(x5c) > MAX_CHAIN \
            or not all(isinstance(c, str) for c in x5c):
        raise JwsError("JWS header has no usable x5c certificate chain")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in x5c]
    except (binascii.Error, ValueError):
        raise JwsError("x5c holds a certificate that cannot be read") from None


def _check_signature(alg: str, cert: x509.Certificate, signing_input: bytes,
                     signature: bytes) -> None:
    key = cert.public_key()
    try:
        if alg == "ES256":
            # RFC 7518 section 3.4: R || S, 32 bytes each, on P-256.
            if not isinstance(key, ec.EllipticCurvePublicKey) \
                    or not isinstance(key.curve, ec.SECP256R1) or len(signature) != 64:
                raise JwsError("ES256 needs a P-256 key and a 64-byte signature")
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                       int.from_bytes(signature[32:], "big"))
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        elif alg in ("RS256", "PS256"):
            if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
                raise JwsError(f"{alg} needs an RSA key of at least 2048 bits")
            pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=32)  # RFC 7518 section 3.5
            key.verify(signature, signing_input, pad, hashes.SHA256())
        else:
            raise JwsError(f"unsupported JWS algorithm {alg!r}")
    except InvalidSignature:
        raise JwsError("the JWS signature does not verify") from None


def _check_chain(chain: list[x509.Certificate], anchors: list[x509.Certificate],
                 now: datetime.datetime) -> x509.Certificate:
    verifier = (
        PolicyBuilder().store(Store(anchors)).time(now)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                            ee_policy=ExtensionPolicy.permit_all())
        .build_client_verifier()
    )
    try:
        verified = verifier.verify(chain[0], chain[1:])
    except VerificationError as e:
        raise JwsError(f"the signer's certificate does not chain to a trust anchor: {e}") \
            from None
    return verified.chain[-1]


def verify(token: str | bytes, anchors: list[x509.Certificate],
           now: datetime.datetime | None = None) -> VerifiedJws:
    """The payload of a valid JWS signed by a certificate chaining to `anchors`; JwsError
    otherwise."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise JwsError("the JWS is not ASCII") from None
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwsError("not a JWS in compact serialization (three dot-separated parts)")
    header = _header(parts[0])
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise JwsError(f"unsupported JWS algorithm {alg!r} (expected one of "
                       f"{', '.join(ALGORITHMS)})")
    if header.get("crit"):
        raise JwsError("the JWS header has critical parameters this server does not know")
    payload = _b64url(parts[1], "JWS payload")
    signature = _b64url(parts[2], "JWS signature")
    chain = _chain(header)
    _check_signature(alg, chain[0], f"{parts[0]}.{parts[1]}".encode("ascii"), signature)
    anchor = _check_chain(chain, anchors, now or datetime.datetime.now(datetime.UTC))
    return VerifiedJws(payload, alg, chain[0].subject.rfc4514_string(),
                       anchor.subject.rfc4514_string())
