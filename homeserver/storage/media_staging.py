"""Staging: media content is first written, whole, to a private temporary file.

Nothing is stored under a media key until its content is complete: the request body (or a
generated thumbnail) is copied here while its size is counted against the limit and its SHA-256
computed, then fsync'ed; only then do the services take the database lock and `put` it (a rename,
see media_files.py). A body that is too large, or shorter than its declared Content-Length,
is refused here and its temporary file removed, so it leaves no file and no row.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from homeserver.protocol.errors import Errcode, MatrixError

STAGING_DIR_NAME = ".staging"
CHUNK = 256 * 1024
HEAD_BYTES = 4096  # enough for every signature the sniffer knows


@dataclass(frozen=True)
class StagedFile:
    path: Path
    size: int
    sha256: str
    head: bytes  # the first HEAD_BYTES bytes, for content sniffing


def media_root() -> Path:
    # Spec-free operator setting: relative to the config file's directory.
    return settings.CONFIG_DIR / settings.PALISADE.media_path


def staging_dir() -> Path:
    path = media_root() / STAGING_DIR_NAME
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def too_large(limit: int) -> MatrixError:
    # Spec: content repository "Security considerations": 413 M_TOO_LARGE.
    return MatrixError(413, Errcode.TOO_LARGE, f"Cannot upload files larger than {limit} bytes")


def stage_stream(read: Callable[[int], bytes], *, max_size: int,
                 expected_size: int | None = None) -> StagedFile:
    """Copy everything `read` yields into a new staged file. Raises 413 M_TOO_LARGE past
    `max_size` and 400 M_INVALID_PARAM when the length differs from `expected_size`
    (a truncated body); either way no file remains."""
    fd, name = tempfile.mkstemp(dir=staging_dir(), prefix="up-")
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := read(CHUNK):
                size += len(chunk)
                if size > max_size:
                    raise too_large(max_size)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                out.write(chunk)
            if expected_size is not None and size != expected_size:
                raise MatrixError(400, Errcode.INVALID_PARAM,
                                  f"Received {size} bytes but Content-Length said "
                                  f"{expected_size}")
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StagedFile(path=path, size=size, sha256=digest.hexdigest(), head=head)


def stage_bytes(data: bytes) -> StagedFile:
    view = memoryview(data)
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = bytes(view[pos:pos + n])
        pos += len(chunk)
        return chunk

    return stage_stream(read, max_size=max(len(data), 1))


def discard(staged: StagedFile | None) -> None:
    """Remove a staged file that was not (or not wholly) moved into the store."""
    if staged is not None:
        staged.path.unlink(missing_ok=True)
