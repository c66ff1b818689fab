"""OpenID tokens: a user proves their Matrix ID to a third-party service.

Spec: client-server API "OpenID" (POST /user/{userId}/openid/request_token) and server-server
API "OpenID" (GET /_matrix/federation/v1/openid/userinfo). A_25479: these tokens live in their
own table, so an ordinary access token is never accepted by userinfo and an OpenID token never
authenticates a client request.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts.sessions import hash_token, now_ms
from homeserver.services.accounts.user_ids import local_user_from_path
from homeserver.storage import openid as openid_store

PREFIX = "paloid_"


def do_request_token(requester: str, user_id_text: str) -> dict:
    if str(local_user_from_path(user_id_text)) != requester:
        raise MatrixError(403, Errcode.FORBIDDEN, "Cannot request OpenID tokens for other users.")
    lifetime_s = settings.PALISADE.openid.token_lifetime_seconds
    token = PREFIX + secrets.token_urlsafe(32)
    now = now_ms()
    with transaction.atomic():
        openid_store.delete_expired(now)
        openid_store.insert_token(requester, hash_token(token), now + lifetime_s * 1000, now)
        record(
            AuditAction.OPENID_TOKEN_ISSUED,
            actor=requester,
            actor_type=ActorType.USER,
            target=requester,
            details={"expires_in": lifetime_s},
        )
    return {
        "access_token": token,
        "token_type": "Bearer",
        "matrix_server_name": settings.PALISADE.server_name,
        "expires_in": lifetime_s,
    }


def userinfo(token: str | None) -> dict:
    """Spec: 401 M_UNKNOWN_TOKEN "Access token unknown or expired"."""
    if not token:
        raise MatrixError(400, Errcode.MISSING_PARAM, "access_token is required")
    rec = openid_store.lookup_token(hash_token(token))
    if rec is None or rec.valid_until_ms <= now_ms() or rec.user_deactivated:
        raise MatrixError(401, Errcode.UNKNOWN_TOKEN, "Access token unknown or expired")
    return {"sub": rec.user_id}
