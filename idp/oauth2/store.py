"""ORM queries of the authorization server (clients, authorization requests, codes, sessions);
returns dataclasses. Single use is a conditional UPDATE, as in idp/store.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp.models import OAuthClient, OAuthCode, OAuthRequest, OAuthSession


@dataclass(frozen=True)
class ClientRecord:
    client_id: str
    metadata: dict[str, Any]


def create_client(client_id: str, metadata: dict[str, Any], now: int) -> None:
    OAuthClient.objects.create(client_id=client_id, metadata=metadata, created_ts=now)


def get_client(client_id: str) -> ClientRecord | None:
    row = OAuthClient.objects.filter(client_id=client_id).values_list("client_id",
                                                                      "metadata").first()
    return ClientRecord(*row) if row else None


@dataclass(frozen=True)
class RequestRecord:
    pk: int
    request_id: str
    client_id: str
    redirect_uri: str
    scope: str
    device_id: str
    state: str
    nonce: str
    code_challenge: str
    response_mode: str
    browser_hash: str
    user_id: str
    provider_id: str
    subject: str
    sid: str
    consent_hash: str
    expires_ts: int
    done_ts: int | None


_REQUEST_FIELDS = ("pk", "request_id", "client__client_id", "redirect_uri", "scope", "device_id",
                   "state", "nonce", "code_challenge", "response_mode", "browser_hash", "user_id",
                   "provider_id", "subject", "sid", "consent_hash", "expires_ts", "done_ts")


def create_request(*, request_id: str, client_id: str, redirect_uri: str, scope: str,
                   device_id: str, state: str, nonce: str, code_challenge: str,
                   response_mode: str, browser_hash: str, now: int, expires: int) -> int:
    client = OAuthClient.objects.get(client_id=client_id)
    return OAuthRequest.objects.create(
        request_id=request_id, client=client, redirect_uri=redirect_uri, scope=scope,
        device_id=device_id, state=state, nonce=nonce, code_challenge=code_challenge,
        response_mode=response_mode, browser_hash=browser_hash, created_ts=now,
        expires_ts=expires).pk


def get_request(*, pk: int | None = None, request_id: str | None = None) -> RequestRecord | None:
    qs = OAuthRequest.objects.filter(pk=pk) if pk is not None else \
        OAuthRequest.objects.filter(request_id=request_id)
    row = qs.values_list(*_REQUEST_FIELDS).first()
    return RequestRecord(*row) if row else None


def set_request_user(pk: int, *, user_id: str, provider_id: str, subject: str, sid: str,
                     consent_hash: str) -> None:
    OAuthRequest.objects.filter(pk=pk).update(user_id=user_id, provider_id=provider_id,
                                              subject=subject, sid=sid,
                                              consent_hash=consent_hash)


def finish_request(pk: int, now: int) -> bool:
    return OAuthRequest.objects.filter(pk=pk, done_ts__isnull=True).update(done_ts=now) == 1


def create_code(*, code_hash: str, request_pk: int, auth_time: int, expires: int) -> None:
    OAuthCode.objects.create(code_hash=code_hash, request_id=request_pk, auth_time=auth_time,
                             expires_ts=expires)


@dataclass(frozen=True)
class CodeRecord:
    pk: int
    request_pk: int
    auth_time: int
    expires_ts: int
    used_ts: int | None
    issued_device_id: str


def lock_code(code_hash: str) -> CodeRecord | None:
    row = (OAuthCode.objects.select_for_update().filter(code_hash=code_hash)
           .values_list("pk", "request_id", "auth_time", "expires_ts", "used_ts",
                        "issued_device_id").first())
    return CodeRecord(*row) if row else None


def mark_code_used(pk: int, *, now: int, device_id: str) -> None:
    OAuthCode.objects.filter(pk=pk).update(used_ts=now, issued_device_id=device_id)


def purge(now: int) -> None:
    OAuthRequest.objects.filter(expires_ts__lt=now - 3600_000).delete()


def upsert_session(*, client_id: str, user_id: str, device_id: str, scope: str,
                   now: int) -> None:
    client = OAuthClient.objects.get(client_id=client_id)
    OAuthSession.objects.update_or_create(
        user_id=user_id, device_id=device_id,
        defaults={"client": client, "scope": scope, "created_ts": now})


@dataclass(frozen=True)
class SessionRecord:
    client_id: str
    scope: str


def get_session(user_id: str, device_id: str) -> SessionRecord | None:
    row = (OAuthSession.objects.filter(user_id=user_id, device_id=device_id)
           .values_list("client__client_id", "scope").first())
    return SessionRecord(*row) if row else None


def delete_session(user_id: str, device_id: str) -> None:
    OAuthSession.objects.filter(user_id=user_id, device_id=device_id).delete()
