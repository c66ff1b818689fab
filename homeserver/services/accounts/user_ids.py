"""Local user IDs: usernames for registration, and the user identifiers /login and UIA accept.

Spec: appendices "User Identifiers" (localpart grammar); client-server API "Identifier types"
(m.id.user, m.id.thirdparty, m.id.phone) and POST /register (M_INVALID_USERNAME).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.identifiers import InvalidIdentifier, UserID

UNSUPPORTED_3PID = (
    "Logging in with a third-party identifier (email address or phone number) is not "
    "supported: this server keeps no third-party identifiers; use your Matrix user ID"
)


def server_name() -> str:
    return settings.PALISADE.server_name


def local_user_id(localpart: str) -> str:
    return f"@{localpart}:{server_name()}"


def check_username(username: object) -> str:
    """A requested localpart -> the full user ID, or 400 M_INVALID_USERNAME.

    Only the current grammar (a-z 0-9 . _ = - / +) is accepted for new accounts, the whole ID
    must fit in 255 bytes, and all-digit localparts are refused (clients and other servers
    treat those as machine-generated, e.g. for guests)."""
    if not isinstance(username, str) or not username:
        raise MatrixError(400, Errcode.INVALID_USERNAME, "Username must be a non-empty string")
    if username.startswith("@"):
        # Some clients send a full user ID; accept it only if it is ours.
        try:
            parsed = UserID.parse_historical(username)
        except InvalidIdentifier:
            raise MatrixError(400, Errcode.INVALID_USERNAME, "Invalid user ID") from None
        if str(parsed.server_name) != server_name():
            raise MatrixError(400, Errcode.INVALID_USERNAME, "User ID is not on this server")
        username = parsed.localpart
    if not UserID.is_valid_localpart(username):
        raise MatrixError(
            400, Errcode.INVALID_USERNAME,
            "Username may only contain lower-case letters, digits and . _ = - / +",
        )
    if username.isdigit():
        raise MatrixError(400, Errcode.INVALID_USERNAME, "Username must not be only digits")
    user_id = local_user_id(username)
    if len(user_id.encode()) > 255:
        raise MatrixError(400, Errcode.INVALID_USERNAME, "User ID would exceed 255 bytes")
    return user_id


def local_user_from_path(text: str) -> UserID:
    """A {userId} path parameter; 400 M_INVALID_PARAM when it is not a user ID at all."""
    try:
        return UserID.parse_historical(text)
    except InvalidIdentifier as e:
        raise MatrixError(400, Errcode.INVALID_PARAM, str(e)) from None


def user_from_identifier(body: dict[str, Any]) -> str | None:
    """The user a /login body or UIA m.login.password dict names, as a local user ID string, or
    None if it names no possible local user (unknown server, unparsable ID).

    Accepts `identifier: {type: m.id.user, user: <localpart or user ID>}` and the deprecated
    top-level `user`; refuses third-party and phone identifiers with a clear 400."""
    ident = body.get("identifier")
    if ident is None:
        if "medium" in body or "address" in body:
            raise MatrixError(400, Errcode.UNKNOWN, UNSUPPORTED_3PID)
        user = body.get("user")
    else:
        if not isinstance(ident, dict):
            raise MatrixError(400, Errcode.BAD_JSON, "identifier must be an object")
        kind = ident.get("type")
        if kind in ("m.id.thirdparty", "m.id.phone"):
            raise MatrixError(400, Errcode.UNKNOWN, UNSUPPORTED_3PID)
        if kind != "m.id.user":
            raise MatrixError(400, Errcode.UNKNOWN, f"Unknown identifier type {kind!r}")
        user = ident.get("user")
    if not isinstance(user, str) or not user:
        raise MatrixError(400, Errcode.BAD_JSON, "A user identifier (m.id.user) is required")
    if user.startswith("@"):
        try:
            parsed = UserID.parse_historical(user)
        except InvalidIdentifier:
            return None
        if str(parsed.server_name) != server_name():
            return None
        localpart = parsed.localpart
    else:
        localpart = user
    # User IDs on this server are lower case; people type their name as they like.
    return local_user_id(localpart.lower())
