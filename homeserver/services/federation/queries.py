"""Asking other servers on behalf of our clients: profiles and room aliases.

Spec: server-server API "Querying for information" (GET /query/profile, GET /query/directory),
used to answer client-server GET /profile/{userId}[/{field}] and GET /directory/room/{alias}
for users and aliases of other servers. Errors a client sees, within what the client-server
endpoints define: a server the federation allow-list refuses is never contacted (403
M_FORBIDDEN: this server will not disclose it); a remote 404 or 403 is passed on; a server that
cannot be reached or answers with something else means no profile / no mapping is known
(404 M_NOT_FOUND, the message saying why) — the client endpoints define no other error.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.federation import client

logger = logging.getLogger(__name__)

QUERY_TIMEOUT_S = 10.0
PROFILE_FIELDS = ("displayname", "avatar_url")


def _ask(server: str, path: str, query: dict[str, str], what: str) -> Any:
    try:
        return async_to_sync(client.request)("GET", server, path, query=query,
                                             timeout=QUERY_TIMEOUT_S)
    except client.FederationError as e:
        logger.info("query to %s failed: %s", server, e)
        if e.status == 403:
            raise MatrixError(403, Errcode.FORBIDDEN, f"{server} refused to disclose {what}"
                              ) from None
        if e.status == 404:
            raise MatrixError(404, Errcode.NOT_FOUND, f"{what} not found") from None
        raise MatrixError(404, Errcode.NOT_FOUND,
                          f"{what} not found: {server} could not be reached") from None


def remote_profile(user_id: str, server: str, field: str | None = None) -> dict[str, Any]:
    """GET /_matrix/federation/v1/query/profile?user_id=...[&field=...]; only string values of
    the known fields are passed on."""
    query = {"user_id": user_id, **({"field": field} if field else {})}
    answer = _ask(server, "/_matrix/federation/v1/query/profile", query, f"Profile of {user_id}")
    if not isinstance(answer, dict):
        raise MatrixError(404, Errcode.NOT_FOUND, f"Profile of {user_id} not found")
    wanted = (field,) if field else PROFILE_FIELDS
    return {k: v for k in wanted if isinstance(v := answer.get(k), str) and v}


def remote_alias(alias: str, server: str) -> dict[str, Any]:
    """GET /_matrix/federation/v1/query/directory?room_alias=... -> {room_id, servers}."""
    answer = _ask(server, "/_matrix/federation/v1/query/directory", {"room_alias": alias},
                  f"Room alias {alias}")
    room_id = answer.get("room_id") if isinstance(answer, dict) else None
    servers = answer.get("servers") if isinstance(answer, dict) else None
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        raise MatrixError(404, Errcode.NOT_FOUND, f"Room alias {alias} not found.")
    if not isinstance(servers, list):
        servers = []
    servers = [s for s in servers if isinstance(s, str)]
    return {"room_id": room_id, "servers": servers or [server]}
