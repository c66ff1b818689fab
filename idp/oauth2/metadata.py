"""Server metadata discovery. Spec: client-server API "Server metadata discovery"
(GET /_matrix/client/v1/auth_metadata, RFC 8414 fields), also served at the MSC2965 unstable
path older clients use, at /.well-known/oauth-authorization-server and (because clients that
ask for `openid` validate ID tokens with an OpenID client library) at
/.well-known/openid-configuration. 404 M_UNRECOGNIZED while the API is off ("Authentication API
discovery")."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from homeserver.api.responses import error_response, json_response
from homeserver.protocol.errors import Errcode
from idp.oauth2 import keys
from idp.oauth2.http import endpoint, oauth_json
from idp.oauth2.scope import SCOPES_SUPPORTED
from idp.oidc.providers import oauth2_enabled, public_url

BASE = "_palisade/oauth2/"


def issuer() -> str:
    return public_url("")


def server_metadata() -> dict[str, Any]:
    return {
        "issuer": issuer(),
        "authorization_endpoint": public_url(BASE + "authorize"),
        "token_endpoint": public_url(BASE + "token"),
        "revocation_endpoint": public_url(BASE + "revoke"),
        "registration_endpoint": public_url(BASE + "register"),
        "jwks_uri": public_url(BASE + "jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["iss", "sub", "aud", "iat", "exp", "auth_time", "nonce"],
    }


async def auth_metadata(request: HttpRequest) -> HttpResponse:
    if not oauth2_enabled():
        return error_response(404, Errcode.UNRECOGNIZED,
                              "The OAuth 2.0 API is not enabled on this server")
    response = json_response(server_metadata())
    response["Cache-Control"] = "public, max-age=300"
    return response


async def _well_known(request: HttpRequest) -> HttpResponse:
    response = oauth_json(server_metadata())
    response["Cache-Control"] = "public, max-age=300"
    return response


async def _jwks(request: HttpRequest) -> HttpResponse:
    response = oauth_json(keys.public_jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response


well_known = endpoint(get=_well_known)
jwks = endpoint(get=_jwks)
