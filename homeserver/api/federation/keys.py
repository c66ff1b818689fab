"""Key notary endpoints. Spec: server-server API "Querying Keys Through Another Server":
GET /_matrix/key/v2/query/{serverName} and POST /_matrix/key/v2/query — unauthenticated."""

from __future__ import annotations

import contextlib

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.body import json_body
from homeserver.api.responses import json_response
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, ServerName
from homeserver.services.federation import keyring


async def _keys_for(server_name: str, minimum: int | None) -> list[dict]:
    try:
        ServerName.parse(server_name)
    except InvalidIdentifier:
        raise MatrixError(400, Errcode.INVALID_PARAM, f"Bad server name {server_name!r}") from None
    docs = await sync_to_async(keyring.notary_response)(server_name, minimum)
    if not docs:
        # We vouch only for what we fetched ourselves; fetch now (errors = no keys to give).
        with contextlib.suppress(Exception):
            await keyring.fetch_keys_directly(server_name)
        docs = await sync_to_async(keyring.notary_response)(server_name, minimum)
    return docs


async def query_one(request: HttpRequest, server_name: str) -> HttpResponse:
    raw = request.GET.get("minimum_valid_until_ts")
    minimum = int(raw) if raw and raw.isdigit() else None
    return json_response({"server_keys": await _keys_for(server_name, minimum)})


async def query_many(request: HttpRequest) -> HttpResponse:
    body = json_body(request)
    servers = body.get("server_keys")
    if not isinstance(servers, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "server_keys must be an object")
    out: list[dict] = []
    for server_name, criteria in servers.items():
        minimum = None
        if isinstance(criteria, dict):
            for c in criteria.values():
                if isinstance(c, dict) and isinstance(c.get("minimum_valid_until_ts"), int):
                    minimum = max(minimum or 0, c["minimum_valid_until_ts"])
        out += await _keys_for(server_name, minimum)
    return json_response({"server_keys": out})
