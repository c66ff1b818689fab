"""The authorization server's signing key (RS256) for the ID tokens it issues to clients that
ask for the `openid` scope, published at its jwks_uri. Created on first use beside the other
keys ([sso] oauth2_signing_key_path, mode 0600)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from jose import jwt

_lock = threading.Lock()


def _path() -> Path:
    p = Path(settings.PALISADE.sso.oauth2_signing_key_path)
    return p if p.is_absolute() else Path(settings.CONFIG_DIR) / p


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[str, dict[str, Any]]:
    p = Path(path)
    with _lock:
        if not p.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(pem)
            p.chmod(0o600)
    pem_text = p.read_text()
    private = serialization.load_pem_private_key(pem_text.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "RSA", "e": _b64(numbers.e), "n": _b64(numbers.n)}
    # RFC 7638 thumbprint as the key id: it changes exactly when the key does.
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(
        b"=").decode()
    return pem_text, {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def public_jwks() -> dict[str, Any]:
    return {"keys": [_load(str(_path()))[1]]}


def sign(claims: dict[str, Any]) -> str:
    pem, jwk = _load(str(_path()))
    return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": jwk["kid"]})
