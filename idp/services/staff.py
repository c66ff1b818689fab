"""Staff single sign-on for the admin UI: a provider's groups become the roles of
audit/roles.py (Homeserver admin, Compliance officer, Auditor) on every sign-in, so a role
taken away at the provider is gone at the next sign-in. SSO never makes a superuser.
Local admin passwords can be switched off ([sso] admin_password_login = false).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest

from audit.actions import ActorType, AuditAction
from audit.log import record
from audit.roles import ROLE_PERMISSIONS
from homeserver.services.accounts.sessions import now_ms
from idp import store
from idp.oidc.callback import ProviderIdentity
from idp.oidc.mapping import map_localpart, render, staff_roles
from idp.oidc.providers import sso_config
from idp.services.provisioning import subject_ref
from idp.services.sso import refuse

ROLE_NAMES = tuple(ROLE_PERMISSIONS)
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _username(ident: ProviderIdentity) -> str:
    User = get_user_model()
    base = map_localpart(render(ident.provider.user_mapping.localpart, ident.claims)) or "staff"
    base = f"{base}@{ident.provider.id}"[:140]
    name, n = base, 1
    while User.objects.filter(username=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def staff_login(request: HttpRequest, flow: store.FlowRecord, ident: ProviderIdentity) -> str:
    """Sign the staff member into the admin UI; returns where to send the browser."""
    provider = ident.provider
    if not provider.staff_login:
        raise refuse(flow, "staff_login_disabled", "This identity provider is not enabled for "
                                                   "the admin UI.")
    roles = [r for r in staff_roles(provider, ident.claims) if r in ROLE_NAMES]
    if not roles:
        raise refuse(flow, "no_staff_role", "Your account at the identity provider has no role "
                                            "in the admin UI.",
                     extra={"subject_ref": subject_ref(ident.issuer, ident.subject)})
    User = get_user_model()
    with transaction.atomic():
        pk = store.staff_user_id(ident.issuer, ident.subject)
        created = pk is None
        if pk is None:
            user = User.objects.create(username=_username(ident), is_staff=True)
            user.set_unusable_password()
            store.link_staff(provider_id=provider.id, issuer=ident.issuer,
                             subject=ident.subject, user_pk=user.pk, now=now_ms())
        else:
            user = User.objects.select_for_update().get(pk=pk)
            if not user.is_active:
                raise refuse(flow, "staff_inactive", "This admin account has been disabled.")
        user.is_staff = True
        user.first_name = render(provider.user_mapping.display_name, ident.claims)[:150]
        user.email = render(provider.user_mapping.email, ident.claims)[:254]
        user.save()
        wanted = set(Group.objects.filter(name__in=roles))
        current = set(user.groups.filter(name__in=ROLE_NAMES))
        user.groups.remove(*(current - wanted))
        user.groups.add(*(wanted - current))
        record(AuditAction.SSO_STAFF_ROLES_SYNCED, actor=user.get_username(),
               actor_type=ActorType.ADMIN, target=f"auth.user:{user.pk}",
               details={"provider": provider.id, "roles": roles, "created": created,
                        "subject_ref": subject_ref(ident.issuer, ident.subject)})
        login(request, user, backend=MODEL_BACKEND)  # audits ADMIN_LOGIN (audit/signals.py)
        store.add_provider_session(provider_id=provider.id, subject=ident.subject,
                                   sid=ident.sid, admin_session_key=request.session.session_key
                                   or "", now=now_ms())
    return "/admin/"


class SsoAwareLoginForm(AdminAuthenticationForm):
    """The admin login form, refusing local passwords when [sso] admin_password_login is off."""

    def clean(self) -> dict[str, Any]:
        if not sso_config().admin_password_login:
            username = str(self.data.get("username", ""))[:255]
            with transaction.atomic():
                record(AuditAction.LOGIN_FAILED, actor=username, actor_type=ActorType.ADMIN,
                       details={"via": "session", "reason": "password_login_disabled"})
            raise forms.ValidationError(
                "Password sign-in to the admin UI is disabled. Use single sign-on.",
                code="password_login_disabled")
        return super().clean()
