"""What a provider tells us behind the user's back: OpenID Connect Back-Channel Logout 1.0
(log the provider session's devices and admin sessions out) and security event tokens that say
an account is gone (RFC 8417 SETs with the OpenID RISC events account-purged and
account-disabled, delivered by push, RFC 8935) -> deprovisioning.

The tokens' signatures and claims are checked by the caller (idp/oidc/jwt_checks.py); here a
jti is accepted once, then the effects are written and audited in one transaction.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.models import Session
from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.config import OidcProviderConfig
from homeserver.services.accounts.sessions import remove_devices
from idp import store
from idp.oidc.jwt_checks import TokenRejected
from idp.services.provisioning import do_deprovision, subject_ref

RISC = "https://schemas.openid.net/secevent/risc/event-type/"
DEPROVISIONING_EVENTS = (RISC + "account-purged", RISC + "account-disabled")


def _exp_ms(claims: dict[str, Any], fallback_s: int = 86400) -> int:
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        exp = float(claims.get("iat", 0)) + fallback_s
    return int(exp * 1000)


def do_backchannel_logout(provider: OidcProviderConfig, claims: dict[str, Any], *, sub: str,
                          sid: str) -> dict[str, int]:
    """Back-Channel Logout 1.0 section 2.7: end the sessions the logout token names: with a
    sid, the devices and admin sessions that provider session signed in; with only a sub,
    every device of the accounts linked to that subject."""
    with transaction.atomic():
        if not store.remember_jti(issuer=provider.issuer, jti=claims["jti"], purpose="logout",
                                  expires=_exp_ms(claims)):
            raise TokenRejected("replayed_jti", "This logout token was already used.")
        sessions = store.provider_sessions(provider.id, subject=sub, sid=sid)
        by_user: dict[str, list[str] | None] = {}
        for s in sessions:
            if s.user_id and s.device_id and by_user.get(s.user_id, []) is not None:
                by_user.setdefault(s.user_id, []).append(s.device_id)  # type: ignore[union-attr]
        if not sid:
            for user_id in store.identities_of(provider.id, sub):
                by_user[user_id] = None  # all devices
        devices = 0
        for user_id, device_ids in sorted(by_user.items()):
            removed = remove_devices(user_id, device_ids, actor=provider.id,
                                     actor_type=ActorType.SYSTEM, reason="backchannel_logout")
            devices += len(removed)
            record(AuditAction.SSO_BACKCHANNEL_LOGOUT, actor=provider.id,
                   actor_type=ActorType.SYSTEM, target=user_id,
                   details={"provider": provider.id, "by": "sid" if sid else "sub",
                            "devices_removed": len(removed),
                            "subject_ref": subject_ref(provider.issuer, sub) if sub else ""})
            record(AuditAction.LOGOUT, actor=provider.id, actor_type=ActorType.SYSTEM,
                   target=user_id, details={"via": "backchannel_logout",
                                            "devices": len(removed)})
        admin_keys = [s.admin_session_key for s in sessions if s.admin_session_key]
        if admin_keys:
            Session.objects.filter(session_key__in=admin_keys).delete()
            record(AuditAction.SSO_BACKCHANNEL_LOGOUT, actor=provider.id,
                   actor_type=ActorType.SYSTEM, target="admin-ui",
                   details={"provider": provider.id, "admin_sessions": len(admin_keys)})
        store.delete_provider_sessions([s.pk for s in sessions])
    return {"users": len(by_user), "devices": devices, "admin_sessions": len(admin_keys)}


def _event_subject(provider: OidcProviderConfig, claims: dict[str, Any],
                   event: dict[str, Any]) -> str:
    """RFC 9493 subject identifiers: {"format": "iss_sub", iss, sub}, or a top-level sub."""
    subject = event.get("subject")
    if isinstance(subject, dict) and subject.get("format") == "iss_sub":
        if subject.get("iss") != provider.issuer:
            raise TokenRejected("wrong_issuer", "The event is about another issuer's user.")
        sub = subject.get("sub")
    else:
        sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenRejected("missing_sub", "The event names no subject.")
    return sub


def do_security_event(provider: OidcProviderConfig, claims: dict[str, Any]) -> list[str]:
    """Deprovision for RISC account-purged / account-disabled; other events are accepted and
    ignored (RFC 8935: the receiver acknowledges what it parsed)."""
    events = claims.get("events")
    if not isinstance(events, dict) or not events:
        raise TokenRejected("no_events", "The security event token carries no events.")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise TokenRejected("missing_jti", "The security event token has no jti.")
    with transaction.atomic():
        if not store.remember_jti(issuer=provider.issuer, jti=claims["jti"], purpose="set",
                                  expires=_exp_ms(claims, 7 * 86400)):
            raise TokenRejected("replayed_jti", "This security event was already delivered.")
    done: list[str] = []
    for event_type, event in events.items():
        if event_type in DEPROVISIONING_EVENTS and isinstance(event, dict):
            sub = _event_subject(provider, claims, event)
            done += do_deprovision(provider, subject=sub,
                                   reason=event_type.removeprefix(RISC))
    return done
