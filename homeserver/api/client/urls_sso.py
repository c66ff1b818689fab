"""Routes of single sign-on and the OAuth 2.0 API: the Matrix endpoints (login/sso/redirect,
auth_metadata) and the browser and provider-facing endpoints of the idp app under /_palisade/
(the callback, back-channel logout and authorization-server URLs operators register; see
docs/oidc.md)."""

from django.urls import path, re_path

from homeserver.api.client import sso
from homeserver.api.routing import methods
from idp import views
from idp.oauth2 import authorize, metadata, registration, token

P = r"^_matrix/client/(?:r0|v3)/"

urlpatterns = [
    re_path(P + r"login/sso/redirect$", methods(get=sso.sso_redirect)),
    re_path(P + r"login/sso/redirect/(?P<idp_id>[^/]+)$", methods(get=sso.sso_redirect)),
    re_path(r"^_matrix/client/v1/auth_metadata$", methods(get=metadata.auth_metadata)),
    re_path(r"^_matrix/client/unstable/org\.matrix\.msc2965/auth_metadata$",
            methods(get=metadata.auth_metadata)),
    path(".well-known/openid-configuration", metadata.well_known),
    path(".well-known/oauth-authorization-server", metadata.well_known),
    path("_palisade/oidc/callback", views.callback),
    path("_palisade/sso/confirm", views.confirm),
    path("_palisade/oidc/backchannel_logout/<str:provider_id>", views.backchannel_logout),
    path("_palisade/oidc/events/<str:provider_id>", views.security_events),
    path("_palisade/admin/sso/<str:provider_id>", views.admin_sso),
    path("_palisade/oauth2/authorize", authorize.authorize),
    path("_palisade/oauth2/upstream/<str:provider_id>", authorize.upstream),
    path("_palisade/oauth2/consent", authorize.consent),
    path("_palisade/oauth2/token", token.token),
    path("_palisade/oauth2/revoke", token.revoke),
    path("_palisade/oauth2/register", registration.register),
    path("_palisade/oauth2/jwks", metadata.jwks),
]
