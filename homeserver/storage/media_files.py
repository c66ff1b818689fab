"""Where media bytes live: a small backend interface and its filesystem implementation.

    backend = media_backend()
    backend.put("local/ab/cd/abcdEF...", staged)     # all or nothing
    with backend.open(key) as f: ...
    backend.delete(key)                               # absent is not an error

Content arrives as a `StagedFile` (storage/media_staging.py): already complete on local disk,
fsync'ed, its size and SHA-256 known. The filesystem backend keeps its staging directory inside
its root, so `put` is a rename on one filesystem (atomic) followed by an fsync of the directory:
a reader sees the whole file or none, and a crash never leaves a partial file under a key.
An S3-style backend would implement the same three methods (upload from staged.path; keys map
to object names) and be selected in `media_backend`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

from homeserver.storage.media_staging import STAGING_DIR_NAME, StagedFile, media_root

_KEY = re.compile(r"[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-.]+)*")


class MediaBackend(Protocol):
    def put(self, key: str, staged: StagedFile) -> None:
        """Store the staged content under `key`, atomically. The staged file may be consumed."""

    def open(self, key: str) -> BinaryIO:
        """The stored bytes; FileNotFoundError when `key` holds nothing."""

    def delete(self, key: str) -> None:
        """Remove `key`; nothing stored there is not an error."""


class FilesystemBackend:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def staging_dir(self) -> Path:
        return self.root / STAGING_DIR_NAME

    def path_of(self, key: str) -> Path:
        # Keys are made by the services, never taken from a request; check anyway, so no key
        # can name a path outside the root (spec: content repository "Security considerations").
        if not _KEY.fullmatch(key) or any(part in (".", "..") for part in key.split("/")):
            raise ValueError(f"invalid media key {key!r}")
        return self.root / key

    def put(self, key: str, staged: StagedFile) -> None:
        target = self.path_of(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = staged.path
        if source.parent != self.staging_dir:
            # Staged elsewhere (another filesystem): copy beside the target first, then rename.
            tmp = target.with_name(f".{target.name}.tmp")
            with source.open("rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            source = tmp
        os.replace(source, target)
        _fsync_dir(target.parent)

    def open(self, key: str) -> BinaryIO:
        return self.path_of(key).open("rb")

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def media_backend() -> MediaBackend:
    """The configured backend: the filesystem under `media_path` (the seam for S3)."""
    return FilesystemBackend(media_root())
