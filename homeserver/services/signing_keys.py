"""The server's ed25519 signing key: created on first start, loaded once per process.

The key file uses the one-line format `ed25519 <version> <unpadded base64 seed>` that other
Matrix tooling reads. Retired keys are published from config (`old_verify_keys`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from django.conf import settings

from homeserver.protocol.signing import (
    SigningKey,
    decode_signing_key_file,
    encode_signing_key_file,
    generate_signing_key,
)


def ensure_signing_key(path: Path) -> SigningKey:
    """Load the key at `path`, creating it atomically (O_EXCL) when absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        key = generate_signing_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # Another worker won the race; read theirs.
        else:
            with os.fdopen(fd, "w") as f:
                f.write(encode_signing_key_file(key))
            return key
    keys = decode_signing_key_file(path.read_text())
    if not keys:
        raise RuntimeError(f"signing key file {path} holds no key")
    return keys[0]


@functools.cache
def server_signing_key() -> SigningKey:
    return ensure_signing_key(settings.CONFIG_DIR / settings.PALISADE.signing_key_path)
