"""The idp app's ORM queries (the only module of the relying party that runs them); returns
dataclasses. Single use is enforced with conditional UPDATEs (`... WHERE used IS NULL`), whose
row count says who won a race."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from idp.models import (
    ExternalIdentity,
    LoginToken,
    ProviderSession,
    SsoFlow,
    StaffIdentity,
    UsedJwtId,
)


@dataclass(frozen=True)
class FlowRecord:
    pk: int
    browser_hash: str
    provider_id: str
    purpose: str
    nonce: str
    code_verifier: str
    redirect_url: str
    oauth_request_id: int | None
    expires_ts: int
    callback_ts: int | None
    user_id: str
    subject: str
    sid: str
    confirm_hash: str
    confirmed_ts: int | None


_FLOW_FIELDS = ("pk", "browser_hash", "provider_id", "purpose", "nonce", "code_verifier",
                "redirect_url", "oauth_request_id", "expires_ts", "callback_ts", "user_id",
                "subject", "sid", "confirm_hash", "confirmed_ts")


def create_flow(*, state_hash: str, browser_hash: str, provider_id: str, purpose: str,
                nonce: str, code_verifier: str, redirect_url: str, oauth_request_id: int | None,
                now: int, expires: int) -> None:
    SsoFlow.objects.create(state_hash=state_hash, browser_hash=browser_hash,
                           provider_id=provider_id, purpose=purpose, nonce=nonce,
                           code_verifier=code_verifier, redirect_url=redirect_url,
                           oauth_request_id=oauth_request_id, created_ts=now, expires_ts=expires)


def get_flow_by_state(state_hash: str) -> FlowRecord | None:
    row = SsoFlow.objects.filter(state_hash=state_hash).values_list(*_FLOW_FIELDS).first()
    return FlowRecord(*row) if row else None


def get_flow(pk: int) -> FlowRecord | None:
    row = SsoFlow.objects.filter(pk=pk).values_list(*_FLOW_FIELDS).first()
    return FlowRecord(*row) if row else None


def mark_flow_called_back(pk: int, now: int) -> bool:
    """True for the one request that uses the state; False if it was already used."""
    return SsoFlow.objects.filter(pk=pk, callback_ts__isnull=True).update(callback_ts=now) == 1


def set_flow_user(pk: int, *, user_id: str, subject: str, sid: str, confirm_hash: str) -> None:
    SsoFlow.objects.filter(pk=pk).update(user_id=user_id, subject=subject, sid=sid,
                                         confirm_hash=confirm_hash)


def mark_flow_confirmed(pk: int, now: int) -> bool:
    return SsoFlow.objects.filter(pk=pk, confirmed_ts__isnull=True).update(confirmed_ts=now) == 1


def purge_flows(now: int) -> None:
    SsoFlow.objects.filter(expires_ts__lt=now).delete()
    LoginToken.objects.filter(expires_ts__lt=now).delete()
    UsedJwtId.objects.filter(expires_ts__lt=now).delete()


def identity_user(issuer: str, subject: str) -> str | None:
    return (ExternalIdentity.objects.filter(issuer=issuer, subject=subject)
            .values_list("user_id", flat=True).first())


def link_identity(*, provider_id: str, issuer: str, subject: str, user_id: str,
                  now: int) -> None:
    ExternalIdentity.objects.create(provider_id=provider_id, issuer=issuer, subject=subject,
                                    user_id=user_id, created_ts=now, last_login_ts=now)


def touch_identity(issuer: str, subject: str, now: int) -> None:
    ExternalIdentity.objects.filter(issuer=issuer, subject=subject).update(last_login_ts=now)


def update_identity_attributes(issuer: str, subject: str, *, email: str,
                               organisation: str) -> None:
    ExternalIdentity.objects.filter(issuer=issuer, subject=subject).update(
        email=email, organisation=organisation)


def insert_login_token(*, token_hash: str, user_id: str, provider_id: str, subject: str,
                       sid: str, expires: int) -> None:
    LoginToken.objects.create(token_hash=token_hash, user_id=user_id, provider_id=provider_id,
                              subject=subject, sid=sid, expires_ts=expires)


@dataclass(frozen=True)
class LoginTokenRecord:
    user_id: str
    provider_id: str
    subject: str
    sid: str
    expires_ts: int


def consume_login_token(token_hash: str, now: int) -> LoginTokenRecord | None:
    """The token's record if this call is its first use before expiry, else None."""
    row = (LoginToken.objects.filter(token_hash=token_hash)
           .values_list("pk", "user_id", "provider_id", "subject", "sid", "expires_ts").first())
    if row is None or row[5] < now:
        return None
    if LoginToken.objects.filter(pk=row[0], used_ts__isnull=True).update(used_ts=now) != 1:
        return None
    return LoginTokenRecord(*row[1:])


def add_provider_session(*, provider_id: str, subject: str, sid: str, user_id: str = "",
                         device_id: str = "", admin_session_key: str = "", now: int) -> None:
    ProviderSession.objects.create(provider_id=provider_id, subject=subject, sid=sid,
                                   user_id=user_id, device_id=device_id,
                                   admin_session_key=admin_session_key, created_ts=now)


@dataclass(frozen=True)
class ProviderSessionRecord:
    pk: int
    user_id: str
    device_id: str
    admin_session_key: str


def provider_sessions(provider_id: str, *, subject: str, sid: str) -> list[ProviderSessionRecord]:
    """Back-channel logout 1.0 section 2.7: a sid names one provider session; a sub alone
    names all of that subject's sessions."""
    qs = ProviderSession.objects.filter(provider_id=provider_id)
    qs = qs.filter(sid=sid) if sid else qs.filter(subject=subject)
    if sid and subject:
        qs = qs.filter(subject=subject)
    return [ProviderSessionRecord(*r) for r in
            qs.values_list("pk", "user_id", "device_id", "admin_session_key")]


def delete_provider_sessions(pks: list[int]) -> None:
    ProviderSession.objects.filter(pk__in=pks).delete()


def identities_of(provider_id: str, subject: str) -> list[str]:
    return list(ExternalIdentity.objects.filter(provider_id=provider_id, subject=subject)
                .values_list("user_id", flat=True))


def remember_jti(*, issuer: str, jti: str, purpose: str, expires: int) -> bool:
    """False if this jti was seen before (a replay)."""
    try:
        with transaction.atomic():
            UsedJwtId.objects.create(issuer=issuer, jti=jti, purpose=purpose, expires_ts=expires)
    except IntegrityError:
        return False
    return True


def staff_user_id(issuer: str, subject: str) -> int | None:
    return (StaffIdentity.objects.filter(issuer=issuer, subject=subject)
            .values_list("user_id", flat=True).first())


def link_staff(*, provider_id: str, issuer: str, subject: str, user_pk: int, now: int) -> None:
    StaffIdentity.objects.create(provider_id=provider_id, issuer=issuer, subject=subject,
                                 user_id=user_pk, created_ts=now)
