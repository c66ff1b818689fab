"""Signed checkpoints of the chain head, stored in the database and written to external sinks.

A checkpoint is (sequence, head hash, time, server name) signed with the audit ed25519 key as
Matrix-style signed JSON. It is inserted in the transaction of the append (or export) that
triggered it and published to the append-only file / syslog only after that transaction
commits, so a rolled-back append never leaves a checkpoint anywhere. An auditor who keeps the
latest checkpoint (from the sink) can detect a truncated tail or a rewritten table later.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import syslog
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from audit.models import AuditCheckpoint, AuditKey, to_micros
from audit.verify_bundle import canonical_json, signed_payload
from homeserver.protocol.signing import SigningKey, public_key_base64
from homeserver.protocol.unpadded_base64 import encode_base64
from homeserver.services.signing_keys import ensure_signing_key

logger = logging.getLogger(__name__)


def config_path(p: str) -> Path:
    """A path from the operator config: relative paths are relative to the config's folder."""
    return settings.CONFIG_DIR / p  # an absolute p replaces CONFIG_DIR


@functools.lru_cache(maxsize=4)
def _load_key(path: Path) -> SigningKey:
    return ensure_signing_key(path)


def audit_signing_key() -> SigningKey:
    """The ed25519 key that signs checkpoints and export bundles (created on first use)."""
    return _load_key(config_path(settings.PALISADE.audit.signing_key_path))


def sign_object(obj: dict) -> dict:
    """`obj` with this server's audit signature under signatures[server_name][key_id]."""
    key = audit_signing_key()
    server = settings.PALISADE.server_name
    signature = encode_base64(key.sign(signed_payload(obj)))
    return {**obj, "signatures": {server: {key.key_id: signature}}}


def register_key(key: SigningKey, now: datetime) -> None:
    """Keep the public half of `key` in audit_key so exports can ship it (append-only)."""
    public = public_key_base64(key)
    known = AuditKey.objects.filter(key_id=key.key_id).values_list("public_key", flat=True)
    if not known:
        AuditKey.objects.create(key_id=key.key_id, public_key=public, created=now)
    elif known[0] != public:
        raise RuntimeError(f"audit key id {key.key_id} is already registered with another "
                           "public key; give a new key a new version")


def write_checkpoint(seq: int, head_hash: str, now: datetime) -> AuditCheckpoint:
    """Sign and store a checkpoint of the head; the caller holds the append lock in a transaction.
    """
    key = audit_signing_key()
    register_key(key, now)
    signed = sign_object({
        "head_hash": head_hash, "seq": seq,
        "server_name": settings.PALISADE.server_name, "ts": to_micros(now),
    })
    cp = AuditCheckpoint.objects.create(
        seq=seq, head_hash=head_hash, ts=now, server_name=signed["server_name"],
        key_id=key.key_id, signature=signed["signatures"][signed["server_name"]][key.key_id],
    )
    transaction.on_commit(functools.partial(publish, signed), using=connection.alias)
    return cp


def publish(signed_checkpoint: dict) -> None:
    """Append one checkpoint to the configured sinks. Failures are logged, never raised: the
    checkpoint is already committed in the database and the next one will be published."""
    cfg = settings.PALISADE.audit
    line = canonical_json(signed_checkpoint).decode("utf-8")
    if cfg.sink_path:
        path = config_path(cfg.sink_path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            logger.exception("could not append audit checkpoint %s to %s",
                             signed_checkpoint["seq"], path)
    if cfg.syslog:
        syslog.openlog("palisade-audit", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
        syslog.syslog(syslog.LOG_NOTICE, f"checkpoint {line}")


def read_sink(path: Path) -> list[dict]:
    """The checkpoints in an external sink file (one signed JSON object per line)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out
