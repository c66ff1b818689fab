"""Password hashing and checking (Django's hashers: PBKDF2 by default, upgradable in settings).

Never logged, never audited, never returned: a password only ever meets `check_password`.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from homeserver.protocol.errors import Errcode, MatrixError

# Hashing a megabyte of "password" is a cheap denial of service; no real password is this long.
MAX_PASSWORD_LENGTH = 512


@cache
def _dummy_hash() -> str:
    return make_password("palisade-timing-equaliser")


def hash_password(password: str) -> str:
    return make_password(password)


def password_matches(password: object, password_hash: str | None) -> bool:
    """Constant work whether or not the account exists or has a password, so timing does not
    reveal which user IDs are registered."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return False
    if not password_hash or password_hash.startswith("!"):
        check_password(password, _dummy_hash())
        return False
    return check_password(password, password_hash)


def check_new_password(password: object) -> str:
    """Spec: M_WEAK_PASSWORD for a password the server's policy refuses."""
    if not isinstance(password, str):
        raise MatrixError(400, Errcode.BAD_JSON, "Password must be a string")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise MatrixError(400, Errcode.WEAK_PASSWORD, "Password is too long")
    try:
        validate_password(password)
    except ValidationError as e:
        raise MatrixError(400, Errcode.WEAK_PASSWORD, " ".join(e.messages)) from None
    return password
