"""Dynamic client registration. Spec: client-server API "Client registration", "Client
metadata", "Redirect URI validation", "Dynamic client registration flow" (RFC 7591; 201 with
the client_id and the metadata as registered; unsupported values are dropped, invalid ones are
400 invalid_client_metadata / invalid_redirect_uri)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

import orjson
from asgiref.sync import sync_to_async
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.api.auth import client_ip
from homeserver.protocol.errors import MatrixError
from homeserver.services.accounts.sessions import now_ms
from homeserver.services.ratelimit import check_rate_limit
from idp.oauth2 import store
from idp.oauth2.http import OAuthError, endpoint, oauth_json

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
TEXT_FIELDS = ("client_name", "logo_uri", "tos_uri", "policy_uri")


def _https_base(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise OAuthError("invalid_client_metadata", "client_uri must be an https URL without "
                                                    "user information")
    return parts.scheme, parts.hostname


def _same_base(host: str | None, base_host: str) -> bool:
    return host is not None and (host == base_host or host.endswith("." + base_host))


def check_redirect_uri(uri: str, client_host: str, application_type: str) -> None:
    """Spec "Redirect URI validation" (RFC 8252 section 7 for native clients)."""
    def bad(why: str) -> OAuthError:
        return OAuthError("invalid_redirect_uri", f"{uri!r}: {why}")

    if not isinstance(uri, str) or "#" in uri:
        raise bad("must be a URI without a fragment")
    parts = urlsplit(uri)
    if parts.scheme == "https":
        if parts.username or parts.password or not _same_base(parts.hostname, client_host):
            raise bad("must be on the client_uri's host (or a subdomain of it)")
        return
    if application_type != "native":
        raise bad("web clients must use https redirect URIs")
    if parts.scheme == "http":
        if parts.netloc not in LOOPBACK_HOSTS:
            raise bad("http is allowed only on the loopback interface, without a port")
        return
    # Private-use scheme: the client_uri host in reverse-DNS order, and no authority.
    reverse = ".".join(reversed(client_host.split(".")))
    if not (parts.scheme == reverse or parts.scheme.startswith(reverse + ".")):
        raise bad(f"a private-use scheme must start with {reverse!r}")
    if uri[len(parts.scheme) + 1:].startswith("//"):
        raise bad("a private-use scheme URI must not have an authority")


def validate(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OAuthError("invalid_client_metadata", "the body must be a JSON object")
    client_uri = body.get("client_uri")
    if not isinstance(client_uri, str):
        raise OAuthError("invalid_client_metadata", "client_uri is required")
    _, host = _https_base(client_uri)
    application_type = body.get("application_type", "web")
    if application_type not in ("web", "native"):
        raise OAuthError("invalid_client_metadata", "application_type must be web or native")
    if body.get("token_endpoint_auth_method", "none") != "none":
        raise OAuthError("invalid_client_metadata", "only public clients "
                                                    "(token_endpoint_auth_method none) are "
                                                    "supported")
    uris = body.get("redirect_uris")
    if not isinstance(uris, list) or not uris or len(uris) > 20:
        raise OAuthError("invalid_redirect_uri", "redirect_uris must be a list of 1-20 URIs")
    for uri in uris:
        check_redirect_uri(uri, host, application_type)
    grants = body.get("grant_types", ["authorization_code"])
    if not isinstance(grants, list) or "authorization_code" not in grants:
        raise OAuthError("invalid_client_metadata", "grant_types must include "
                                                    "authorization_code")
    if body.get("response_types", ["code"]) != ["code"]:
        raise OAuthError("invalid_client_metadata", "response_types must be [\"code\"]")
    metadata: dict[str, Any] = {
        "client_uri": client_uri, "redirect_uris": uris, "application_type": application_type,
        "token_endpoint_auth_method": "none", "response_types": ["code"],
        "grant_types": [g for g in grants if g in ("authorization_code", "refresh_token")],
        "id_token_signed_response_alg": "RS256",
    }
    for field in TEXT_FIELDS:
        value = body.get(field)
        if isinstance(value, str) and len(value) <= 512:
            if field != "client_name" and not _same_base(urlsplit(value).hostname, host):
                continue  # spec: URIs not on the client_uri's base are ignored
            metadata[field] = value
    if isinstance(body.get("contacts"), list):
        metadata["contacts"] = [c for c in body["contacts"] if isinstance(c, str)][:5]
    return metadata


def do_register(metadata: dict[str, Any], *, ip: str) -> dict[str, Any]:
    try:
        check_rate_limit("registration", f"oauth2:{ip}")
    except MatrixError:
        raise OAuthError("invalid_request", "too many registrations; try later", 429) from None
    client_id = secrets.token_urlsafe(18)
    with transaction.atomic():
        store.create_client(client_id, metadata, now_ms())
        record(AuditAction.OAUTH_CLIENT_REGISTERED, actor=f"oauth2-client:{client_id}",
               actor_type=ActorType.SYSTEM, target=client_id,
               details={"client_name": str(metadata.get("client_name", ""))[:100],
                        "client_host": urlsplit(metadata["client_uri"]).hostname,
                        "application_type": metadata["application_type"]})
    return {"client_id": client_id, "client_id_issued_at": now_ms() // 1000, **metadata}


async def _register(request: HttpRequest) -> HttpResponse:
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise OAuthError("invalid_client_metadata", "the body must be JSON") from None
    metadata = validate(body)
    return oauth_json(await sync_to_async(do_register)(metadata, ip=client_ip(request)), 201)


register = endpoint(post=_register)
