"""Routes for aliases, the room and user directories, upgrades, tags, timestamp lookup, TURN and
OpenID under /_matrix/client/{r0,v3,v1}/. Aliases and tag names may contain "/" once
URL-decoded, so they are matched to the end of the path."""

from django.urls import re_path

from homeserver.api.client import conveniences, directory
from homeserver.api.routing import methods

P = r"^_matrix/client/(?:r0|v3)/"
R = r"rooms/(?P<room_id>[^/]+)/"
U = r"user/(?P<user_id>.+)/"

urlpatterns = [
    re_path(
        P + r"directory/room/(?P<room_alias>.+)$",
        methods(get=directory.get_alias, put=directory.put_alias, delete=directory.delete_alias),
    ),
    re_path(
        P + r"directory/list/room/(?P<room_id>[^/]+)$",
        methods(get=directory.get_visibility, put=directory.put_visibility),
    ),
    re_path(
        P + r"publicRooms$",
        methods(get=directory.get_public_rooms, post=directory.post_public_rooms),
    ),
    re_path(P + r"user_directory/search$", methods(post=directory.search_users)),
    re_path(P + R + r"aliases$", methods(get=directory.room_aliases)),
    re_path(P + R + r"upgrade$", methods(post=conveniences.upgrade)),
    re_path(
        P + U + r"rooms/(?P<room_id>[^/]+)/tags$", methods(get=conveniences.get_tags)
    ),
    re_path(
        P + U + r"rooms/(?P<room_id>[^/]+)/tags/(?P<tag>.+)$",
        methods(put=conveniences.put_tag, delete=conveniences.delete_tag),
    ),
    re_path(P + U + r"openid/request_token$", methods(post=conveniences.request_openid_token)),
    re_path(P + r"voip/turnServer$", methods(get=conveniences.turn_server)),
    re_path(
        r"^_matrix/client/v1/" + R + r"timestamp_to_event$",
        methods(get=conveniences.timestamp_to_event),
    ),
]
