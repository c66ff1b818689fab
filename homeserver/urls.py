"""URL map: the Matrix APIs by prefix, and the admin UI."""

from django.contrib import admin
from django.urls import include, path

from homeserver.api import discovery
from homeserver.api.federation import openid
from homeserver.api.routing import methods

handler404 = "homeserver.api.middleware.unrecognized"

urlpatterns = [
    path("_matrix/client/versions", methods(get=discovery.client_versions)),
    path("_matrix/key/v2/server", methods(get=discovery.key_server)),
    path("_matrix/federation/v1/version", methods(get=discovery.federation_version)),
    path("_matrix/federation/v1/openid/userinfo", methods(get=openid.userinfo)),
    path(".well-known/matrix/client", methods(get=discovery.well_known_client)),
    path(".well-known/matrix/server", methods(get=discovery.well_known_server)),
    path(".well-known/matrix/support", methods(get=discovery.well_known_support)),
    path("", include("homeserver.api.client.urls_rooms")),
    path("", include("homeserver.api.client.urls_accounts")),
    path("", include("homeserver.api.client.urls_e2ee")),
    path("", include("homeserver.api.media.urls_media")),
    path("", include("homeserver.api.client.urls_directory")),
    path("", include("homeserver.api.client.urls_ephemeral")),
    path("", include("homeserver.api.federation.urls_federation")),
    path("", include("homeserver.api.client.urls_sso")),
    path("admin/", admin.site.urls),
]
