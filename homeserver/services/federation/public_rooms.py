"""Serving this server's published room directory to other servers.

Spec: server-server API "Published Room Directory" (GET and POST
/_matrix/federation/v1/publicRooms): the same listing as the client-server /publicRooms, of
this server's own directory. Under profiles where public rooms stay local (A_26515-01, A_26520,
A_28590) the request is refused earlier, by the `federation_request` policy
(compliance/policies/room_rules.py), before it reaches this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.directory.public_rooms import check_query_body, list_public_rooms


def _bool_param(value: str | None, name: str) -> bool:
    if value in (None, "", "false"):
        return False
    if value == "true":
        return True
    raise MatrixError(400, Errcode.INVALID_PARAM, f"{name} must be true or false")


def list_for_server(origin: str, query: Mapping[str, str]) -> dict[str, Any]:
    """GET: limit, since, include_all_networks, third_party_instance_id as query parameters."""
    limit_text = query.get("limit")
    limit = None
    if limit_text not in (None, ""):
        if not limit_text.isdigit():
            raise MatrixError(400, Errcode.INVALID_PARAM, "limit must be a non-negative integer")
        limit = int(limit_text)
    _bool_param(query.get("include_all_networks"), "include_all_networks")
    return list_public_rooms(limit=limit, since=query.get("since"),
                             third_party_instance_id=query.get("third_party_instance_id"))


def query_for_server(origin: str, body: Any) -> dict[str, Any]:
    """POST: the same parameters in a JSON body, plus `filter`."""
    if not isinstance(body, dict):
        raise MatrixError(400, Errcode.NOT_JSON, "The request body must be a JSON object")
    return list_public_rooms(**check_query_body(body))
