"""Who a provider's user is here: just-in-time provisioning on the first sign-in, the same
account on every later one (linked by issuer + subject, never by name), the display name kept
in step with the claims, and deprovisioning when the provider says the user is gone.

Spec: client-server API "SSO client login" ("Handling the callback": map the user details to
a valid Matrix user identifier; register it if new); appendices "Mapping from other character
sets".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.config import OidcProviderConfig
from homeserver.protocol.errors import MatrixError
from homeserver.services.accounts.account import leave_all_rooms, run_deactivation_hooks
from homeserver.services.accounts.profile import propagate_to_rooms
from homeserver.services.accounts.register import insert_account
from homeserver.services.accounts.sessions import now_ms, remove_devices
from homeserver.services.accounts.user_ids import check_username
from homeserver.storage import account_data as data_store
from homeserver.storage import accounts as account_store
from idp import store
from idp.oidc.mapping import failed_requirements, map_localpart, render

MAX_SUFFIX = 100


class ProvisioningRefused(Exception):
    def __init__(self, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details or {}


def subject_ref(issuer: str, subject: str) -> str:
    """What the audit log names a provider identity by: a digest, since subjects are often
    personal numbers (TI: the telematik ID)."""
    return hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    created: bool
    displayname: str | None  # a new display name to send to the user's rooms after commit


def check_requirements(provider: OidcProviderConfig, claims: dict[str, Any]) -> None:
    failed = failed_requirements(provider.attribute_requirements, claims)
    if failed:
        raise ProvisioningRefused(
            "attribute_requirement",
            "Your account at the identity provider is not permitted to use this server.",
            {"failed_claims": failed})


def _free_user_id(base: str) -> str:
    """The first free user ID of base, base-2, base-3, ...: a new identity never takes over an
    existing account that happens to have the same name."""
    for n in range(1, MAX_SUFFIX + 1):
        candidate = base if n == 1 else f"{base}-{n}"
        try:
            user_id = check_username(candidate)
        except MatrixError as e:
            raise ProvisioningRefused("invalid_localpart",
                                      "The identity provider's username cannot be used here.",
                                      {"error": e.error}) from None
        if not account_store.account_exists(user_id):
            return user_id
    raise ProvisioningRefused("localpart_exhausted", "No free user name could be found.")


def _mapped(provider: OidcProviderConfig, claims: dict[str, Any]) -> dict[str, str]:
    m = provider.user_mapping
    return {"localpart": map_localpart(render(m.localpart, claims)),
            "displayname": render(m.display_name, claims)[:256],
            "email": render(m.email, claims)[:320],
            "organisation": render(m.organisation, claims)[:255] if m.organisation else ""}


def sign_in(provider: OidcProviderConfig, *, issuer: str, subject: str,
            claims: dict[str, Any]) -> SignedIn:
    """Find or create the account of (issuer, subject), inside the caller's transaction."""
    check_requirements(provider, claims)
    mapped = _mapped(provider, claims)
    ref = subject_ref(issuer, subject)
    now = now_ms()
    user_id = store.identity_user(issuer, subject)
    if user_id is None:
        if not mapped["localpart"] or mapped["localpart"].isdigit():
            raise ProvisioningRefused("no_localpart", "The identity provider did not send a "
                                                      "usable username.")
        user_id = _free_user_id(mapped["localpart"])
        insert_account(user_id, password_hash="", displayname=mapped["displayname"] or None,
                       actor=user_id, actor_type=ActorType.USER, method="sso")
        store.link_identity(provider_id=provider.id, issuer=issuer, subject=subject,
                            user_id=user_id, now=now)
        store.update_identity_attributes(issuer, subject, email=mapped["email"],
                                         organisation=mapped["organisation"])
        record(AuditAction.SSO_ACCOUNT_LINKED, actor=user_id, target=user_id,
               details={"provider": provider.id, "subject_ref": ref, "provisioned": True})
        return SignedIn(user_id, True, None)
    account = account_store.lock_account(user_id)
    if account is None or account.deactivated:
        raise ProvisioningRefused("deactivated", "This account has been deactivated.")
    store.touch_identity(issuer, subject, now)
    store.update_identity_attributes(issuer, subject, email=mapped["email"],
                                     organisation=mapped["organisation"])
    new_name = None
    if provider.update_display_name and mapped["displayname"]:
        profile = data_store.get_profile(user_id)
        if profile is not None and profile.displayname != mapped["displayname"]:
            data_store.set_profile_field(user_id, "displayname", mapped["displayname"])
            new_name = mapped["displayname"]
    return SignedIn(user_id, False, new_name)


def after_commit(signed_in: SignedIn) -> None:
    """Effects outside the sign-in transaction: the new display name goes to the user's rooms
    (one event per room, as PUT /profile does)."""
    if signed_in.displayname is not None:
        propagate_to_rooms(signed_in.user_id, "displayname", signed_in.displayname)


def do_deprovision(provider: OidcProviderConfig, *, subject: str, reason: str) -> list[str]:
    """The provider says the user is gone (a RISC account-purged/-disabled event, or the
    operator's command): every account linked to the identity is deactivated, its devices and
    tokens removed, its profile cleared, and it leaves its rooms. Returns the user IDs."""
    done = []
    for user_id in store.identities_of(provider.id, subject):
        with transaction.atomic():
            account = account_store.lock_account(user_id)
            if account is None or account.deactivated:
                continue
            account_store.mark_deactivated(user_id, erased=False)
            removed = remove_devices(user_id, None, actor=provider.id,
                                     actor_type=ActorType.SYSTEM, reason="deprovisioned")
            data_store.clear_profile(user_id)
            record(AuditAction.USER_DEPROVISIONED, actor=provider.id,
                   actor_type=ActorType.SYSTEM, target=user_id,
                   details={"provider": provider.id, "reason": reason,
                            "subject_ref": subject_ref(provider.issuer, subject),
                            "devices_removed": len(removed)})
            record(AuditAction.USER_DEACTIVATED, actor=provider.id, actor_type=ActorType.SYSTEM,
                   target=user_id, details={"erase": False, "devices_removed": len(removed),
                                            "via": "deprovisioning"})
            run_deactivation_hooks(user_id, False)
        leave_all_rooms(user_id)
        done.append(user_id)
    return done
