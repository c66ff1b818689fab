"""mxc:// URIs and media IDs. Spec: client-server API "Matrix Content (mxc://) URIs" and the
content repository's "Security considerations" (server names must be valid server names;
media IDs only A-Za-z0-9, `_` and `-`: a whitelist, so no traversal trick gets through)."""

from __future__ import annotations

import re
import secrets
import string

from django.conf import settings

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, ServerName

_MEDIA_ID = re.compile(r"[A-Za-z0-9_\-]{1,255}")
_ALPHABET = string.ascii_letters + string.digits
MEDIA_ID_LENGTH = 24  # 62**24 ~ 2**143: unguessable, which the legacy endpoints relied on


def new_media_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(MEDIA_ID_LENGTH))


def check_media_ref(server_name: str, media_id: str) -> None:
    """400 M_INVALID_PARAM for a malformed server name or media ID (a well-formed one that
    names nothing is the caller's 404)."""
    try:
        ServerName.parse(server_name)
    except InvalidIdentifier:
        raise MatrixError(400, Errcode.INVALID_PARAM, "Invalid server name") from None
    if not _MEDIA_ID.fullmatch(media_id):
        raise MatrixError(400, Errcode.INVALID_PARAM,
                          "Invalid media ID: only A-Z, a-z, 0-9, '_' and '-' are allowed")


def is_local(server_name: str) -> bool:
    return server_name == settings.PALISADE.server_name


def mxc_uri(media_id: str) -> str:
    return f"mxc://{settings.PALISADE.server_name}/{media_id}"


def parse_mxc(uri: str) -> tuple[str, str] | None:
    """(server_name, media_id) of a well-formed mxc:// URI, else None."""
    if not isinstance(uri, str) or not uri.startswith("mxc://"):
        return None
    server_name, slash, media_id = uri[len("mxc://"):].partition("/")
    if not slash:
        return None
    try:
        check_media_ref(server_name, media_id)
    except MatrixError:
        return None
    return server_name, media_id


def file_key(media_id: str) -> str:
    """Where a local media's bytes are kept (two levels of fan-out by ID prefix)."""
    return f"local/{media_id[:2]}/{media_id[2:4]}/{media_id}"


def thumbnail_key(media_id: str, width: int, height: int, method: str, animated: bool) -> str:
    # A random suffix per generated file: two racing generations never share a file, so the
    # loser can remove its own without touching the winner's.
    tag = "-a" if animated else ""
    return (f"thumbnails/{media_id[:2]}/{media_id[2:4]}/{media_id}/"
            f"{width}x{height}-{method}{tag}-{secrets.token_hex(4)}")
