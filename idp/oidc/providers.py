"""The configured OpenID providers ([[oidc_providers]]) and the switches of [sso], read from
settings at call time (tests and reloads replace settings.PALISADE)."""

from __future__ import annotations

from django.conf import settings

from homeserver.config import OidcProviderConfig, SsoConfig

# Profiles whose operators sign people in through an IdP: with a provider configured, password
# login is off unless [sso] password_login = true (REQUIREMENTS.md "Org login", "ePA login").
IDP_ONLY_PROFILES = ("ti-m-basis", "ti-m-pro", "ti-m-epa")


class UnknownProvider(LookupError):
    pass


def sso_config() -> SsoConfig:
    return settings.PALISADE.sso


def all_providers() -> tuple[OidcProviderConfig, ...]:
    return settings.PALISADE.oidc_providers


def get_provider(provider_id: str) -> OidcProviderConfig:
    for p in all_providers():
        if p.id == provider_id:
            return p
    raise UnknownProvider(provider_id)


def provider_for_issuer(issuer: str) -> list[OidcProviderConfig]:
    return [p for p in all_providers() if p.issuer.rstrip("/") == issuer.rstrip("/")]


def sso_enabled() -> bool:
    return bool(all_providers())


def password_login_enabled() -> bool:
    configured = sso_config().password_login
    if configured is not None:
        return configured
    return not (sso_enabled() and settings.PALISADE.compliance_profile in IDP_ONLY_PROFILES)


def oauth2_enabled() -> bool:
    """The OAuth 2.0 API needs an upstream provider to authenticate users."""
    return sso_config().oauth2_enabled and sso_enabled()


def staff_providers() -> list[OidcProviderConfig]:
    return [p for p in all_providers() if p.staff_login]


def public_url(path: str) -> str:
    """An absolute URL on this server (public_baseurl ends with "/")."""
    return settings.PALISADE.public_baseurl + path.lstrip("/")


CALLBACK_PATH = "_palisade/oidc/callback"


def callback_url() -> str:
    """The redirect URI to register at every provider."""
    return public_url(CALLBACK_PATH)


def backchannel_logout_url(provider_id: str) -> str:
    return public_url(f"_palisade/oidc/backchannel_logout/{provider_id}")


def security_events_url(provider_id: str) -> str:
    return public_url(f"_palisade/oidc/events/{provider_id}")
