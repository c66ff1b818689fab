"""Unauthenticated discovery endpoints: versions, .well-known, server keys, federation version.

Spec: client-server API "GET /_matrix/client/versions", "Server Discovery" (.well-known/matrix/
client and support); server-server API "Server discovery" (.well-known/matrix/server),
"Publishing Keys" and "GET /_matrix/federation/v1/version".
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from homeserver.api.responses import error_response, json_response
from homeserver.protocol.errors import Errcode
from homeserver.services.server_keys import server_key_document
from homeserver.version import SERVER_SOFTWARE, __version__

# The client-server spec versions whose required behaviour Palisade implements.
SUPPORTED_SPEC_VERSIONS = ["v1.11"]


async def client_versions(request: HttpRequest) -> HttpResponse:
    return json_response({"versions": SUPPORTED_SPEC_VERSIONS, "unstable_features": {}})


async def well_known_client(request: HttpRequest) -> HttpResponse:
    cfg = settings.PALISADE
    body = {"m.homeserver": {"base_url": cfg.public_baseurl.rstrip("/")}}
    body.update(cfg.well_known.client_extra)
    return json_response(body)


async def well_known_server(request: HttpRequest) -> HttpResponse:
    server = settings.PALISADE.well_known.server
    if not server:
        return error_response(404, Errcode.NOT_FOUND, "No .well-known/matrix/server delegation")
    return json_response({"m.server": server})


async def well_known_support(request: HttpRequest) -> HttpResponse:
    wk = settings.PALISADE.well_known
    if not wk.support_contacts and not wk.support_page:
        return error_response(404, Errcode.NOT_FOUND, "No support information configured")
    body: dict = {}
    if wk.support_contacts:
        body["contacts"] = list(wk.support_contacts)
    if wk.support_page:
        body["support_page"] = wk.support_page
    return json_response(body)


async def key_server(request: HttpRequest) -> HttpResponse:
    return json_response(server_key_document())


async def federation_version(request: HttpRequest) -> HttpResponse:
    return json_response({"server": {"name": SERVER_SOFTWARE, "version": __version__}})
