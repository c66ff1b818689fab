"""What GET /login advertises and which POST /login types the idp app answers, by the current
configuration. Registered into homeserver/services/accounts/login.py by idp/apps.py.

Spec: client-server API "GET /_matrix/client/v3/login" and the m.login.sso flow schema
(identity_providers; oauth_aware_preferred, "OAuth 2.0 aware clients", v1.18).
"""

from __future__ import annotations

from typing import Any

from homeserver.protocol.errors import Errcode, MatrixError
from idp.oidc.providers import (
    all_providers,
    oauth2_enabled,
    password_login_enabled,
    sso_enabled,
)
from idp.services import token_login

PASSWORD = "m.login.password"
SSO = "m.login.sso"


def identity_providers() -> list[dict[str, str]]:
    out = []
    for p in all_providers():
        idp = {"id": p.id, "name": p.name}
        if p.brand:
            idp["brand"] = p.brand
        out.append(idp)
    return out


def filter_flows(flows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not password_login_enabled():
        flows = [f for f in flows if f.get("type") != PASSWORD]
    if sso_enabled():
        sso: dict[str, Any] = {"type": SSO, "identity_providers": identity_providers()}
        if oauth2_enabled():
            sso["oauth_aware_preferred"] = True
        flows = [*flows, sso, {"type": token_login.TOKEN_LOGIN}]
    if any(p.token_login for p in all_providers()):
        flows = [*flows, {"type": token_login.JWT_LOGIN}]
    return flows


def _unknown(login_type: str) -> MatrixError:
    return MatrixError(400, Errcode.UNKNOWN, f"Unknown login type {login_type!r}")


def password_gate(body: dict[str, Any], *, ip: str = "") -> dict[str, Any] | None:
    if password_login_enabled():
        return None
    raise MatrixError(400, Errcode.UNKNOWN,
                      "Password login is disabled on this server; sign in with single sign-on")


def token_handler(body: dict[str, Any], *, ip: str = "") -> dict[str, Any] | None:
    if not sso_enabled():
        raise _unknown(token_login.TOKEN_LOGIN)
    return token_login.login_with_token(body, ip=ip)


def jwt_handler(body: dict[str, Any], *, ip: str = "") -> dict[str, Any] | None:
    if not any(p.token_login for p in all_providers()):
        raise _unknown(token_login.JWT_LOGIN)
    return token_login.login_with_jwt(body, ip=ip)


def register() -> None:
    from homeserver.services.accounts import login

    login.LOGIN_HANDLERS[PASSWORD] = password_gate
    login.LOGIN_HANDLERS[token_login.TOKEN_LOGIN] = token_handler
    login.LOGIN_HANDLERS[token_login.JWT_LOGIN] = jwt_handler
    if filter_flows not in login.LOGIN_FLOW_FILTERS:
        login.LOGIN_FLOW_FILTERS.append(filter_flows)
