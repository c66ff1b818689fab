"""Routes for accounts and sessions under /_matrix/client/{r0,v3}/, and the Synapse-compatible
shared-secret registration API. User and device IDs may contain "/" once URL-decoded, so their
patterns are greedy and the more specific routes come first."""

from django.urls import re_path

from homeserver.api.client import (
    account,
    account_data,
    devices,
    login,
    profile,
    register,
    synapse_admin,
)
from homeserver.api.routing import methods

P = r"^_matrix/client/(?:r0|v3)/"
U = r"user/(?P<user_id>.+)/"

urlpatterns = [
    re_path(P + r"login$", methods(get=login.get_login, post=login.post_login)),
    re_path(P + r"refresh$", methods(post=login.post_refresh)),
    re_path(P + r"logout$", methods(post=login.post_logout)),
    re_path(P + r"logout/all$", methods(post=login.post_logout_all)),
    re_path(P + r"register$", methods(post=register.register)),
    re_path(P + r"register/available$", methods(get=register.available)),
    re_path(
        P + r"register/m\.login\.registration_token/validity$", methods(get=register.token_validity)
    ),
    re_path(P + r"account/whoami$", methods(get=account.whoami)),
    re_path(P + r"account/password$", methods(post=account.change_password)),
    re_path(P + r"account/deactivate$", methods(post=account.deactivate)),
    re_path(P + r"devices$", methods(get=devices.list_devices)),
    re_path(
        P + r"devices/(?P<device_id>.+)$",
        methods(get=devices.get_device, put=devices.put_device, delete=devices.delete_device),
    ),
    re_path(P + r"delete_devices$", methods(post=devices.delete_devices)),
    re_path(
        P + r"profile/(?P<user_id>.+)/displayname$",
        methods(get=profile.get_displayname, put=profile.put_displayname),
    ),
    re_path(
        P + r"profile/(?P<user_id>.+)/avatar_url$",
        methods(get=profile.get_avatar_url, put=profile.put_avatar_url),
    ),
    re_path(P + r"profile/(?P<user_id>.+)$", methods(get=profile.get_profile)),
    re_path(
        P + U + r"rooms/(?P<room_id>[^/]+)/account_data/(?P<data_type>[^/]+)$",
        methods(get=account_data.get_account_data, put=account_data.put_account_data),
    ),
    re_path(
        P + U + r"account_data/(?P<data_type>[^/]+)$",
        methods(get=account_data.get_account_data, put=account_data.put_account_data),
    ),
    re_path(P + U + r"filter$", methods(post=account_data.create_filter)),
    re_path(P + U + r"filter/(?P<filter_id>[^/]+)$", methods(get=account_data.get_filter)),
    re_path(
        r"^_synapse/admin/v1/register$",
        methods(get=synapse_admin.get_nonce, post=synapse_admin.post_register),
    ),
]
