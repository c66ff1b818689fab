"""Media of other servers: the seam where federation plugs in.

Spec: client-server API content repository ("Content is downloaded from the recipient's local
homeserver, which must first transfer the content from the origin homeserver") and the
server-server API "Content Repository" (GET /_matrix/federation/v1/media/download/{mediaId}).
Until federation lands, remote media is 404 M_NOT_FOUND. The fetcher that replaces this must
first check `server_name` against the federation list (REQUIREMENTS.md A_25534 / A_26328),
refuse remote content over the size limit with 502 M_TOO_LARGE, and cache what it fetched as
"new" media (spec: the v1.11 freeze applies by the date the cache was populated).
"""

from __future__ import annotations

from typing import NoReturn

from homeserver.protocol.errors import Errcode, MatrixError


def remote_media(server_name: str, media_id: str) -> NoReturn:
    raise MatrixError(404, Errcode.NOT_FOUND, "Media not found (remote media is not fetched)")
