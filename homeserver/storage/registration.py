"""User-interactive auth sessions, registration tokens and shared-secret registration nonces."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F

from homeserver.models import RegistrationNonce, RegistrationToken, UIASession


@dataclass(frozen=True)
class UIASessionRecord:
    session_id: str
    operation: str
    user_id: str
    completed: list[str]
    registration_token: str
    created_ts: int


# --- UIA sessions ---------------------------------------------------------------------------


def create_uia_session(*, session_id: str, operation: str, user_id: str, now: int) -> None:
    UIASession.objects.create(
        session_id=session_id, operation=operation, user_id=user_id, completed=[], created_ts=now
    )


def get_uia_session(session_id: str) -> UIASessionRecord | None:
    return lock_uia_session(session_id, lock=False)


def lock_uia_session(session_id: str, *, lock: bool = True) -> UIASessionRecord | None:
    qs = UIASession.objects.select_for_update() if lock else UIASession.objects.all()
    row = (
        qs.filter(session_id=session_id)
        .values_list(
            "session_id", "operation", "user_id", "completed", "registration_token", "created_ts"
        )
        .first()
    )
    return UIASessionRecord(*row) if row else None


def update_uia_session(session_id: str, *, completed: list[str], registration_token: str) -> None:
    UIASession.objects.filter(session_id=session_id).update(
        completed=completed, registration_token=registration_token
    )


def delete_uia_session(session_id: str) -> bool:
    return UIASession.objects.filter(session_id=session_id).delete()[0] > 0


def purge_uia_sessions(created_before: int) -> None:
    """Drop expired sessions, releasing the registration-token uses they held as pending."""
    expired = UIASession.objects.filter(created_ts__lt=created_before)
    for token in expired.exclude(registration_token="").values_list(
        "registration_token", flat=True
    ):
        RegistrationToken.objects.filter(token=token, pending__gt=0).update(
            pending=F("pending") - 1
        )
    expired.delete()


# --- registration tokens --------------------------------------------------------------------


def create_registration_token(
    token: str, *, uses_allowed: int | None = None, expiry_time: int | None = None
) -> None:
    RegistrationToken.objects.create(
        token=token, uses_allowed=uses_allowed, expiry_time=expiry_time
    )


def registration_token_usable(token: str, now: int, *, lock: bool = False) -> bool:
    """Spec: a token is valid while unexpired and (pending + completed) < uses_allowed."""
    qs = RegistrationToken.objects.filter(token=token)
    if lock:
        qs = qs.select_for_update()
    row = qs.values_list("uses_allowed", "pending", "completed", "expiry_time").first()
    if row is None:
        return False
    uses_allowed, pending, completed, expiry_time = row
    if expiry_time is not None and expiry_time <= now:
        return False
    return uses_allowed is None or pending + completed < uses_allowed


def add_pending_use(token: str) -> None:
    RegistrationToken.objects.filter(token=token).update(pending=F("pending") + 1)


def complete_use(token: str) -> None:
    RegistrationToken.objects.filter(token=token, pending__gt=0).update(
        pending=F("pending") - 1, completed=F("completed") + 1
    )


def registration_token_counts(token: str) -> tuple[int, int] | None:
    row = RegistrationToken.objects.filter(token=token).values_list("pending", "completed").first()
    return (row[0], row[1]) if row else None


# --- shared-secret registration nonces ------------------------------------------------------


def insert_nonce(nonce: str, now: int) -> None:
    RegistrationNonce.objects.create(nonce=nonce, created_ts=now)


def consume_nonce(nonce: str, *, not_before: int) -> bool:
    """Delete the nonce; True only if it existed and was issued at or after `not_before`. A
    DELETE is atomic, so of two concurrent uses exactly one gets True."""
    fresh = RegistrationNonce.objects.filter(nonce=nonce, created_ts__gte=not_before).delete()[0]
    if not fresh:
        RegistrationNonce.objects.filter(nonce=nonce).delete()  # expired: spent all the same
    return fresh > 0


def purge_nonces(created_before: int) -> None:
    RegistrationNonce.objects.filter(created_ts__lt=created_before).delete()
