"""Server-server API routes (/_matrix/federation/...) and the key notary (/_matrix/key/...)."""

from django.urls import re_path

from homeserver.api.federation import keys, media, membership_views, views
from homeserver.api.federation import public_rooms as public_rooms_views
from homeserver.api.federation.e2ee import keys_claim, keys_query, user_devices
from homeserver.api.routing import methods

F = r"^_matrix/federation/v1/"
F2 = r"^_matrix/federation/v2/"
RU = r"(?P<room_id>[^/]+)/(?P<user_id>[^/]+)$"
RE = r"(?P<room_id>[^/]+)/(?P<event_id>[^/]+)$"
M = membership_views

urlpatterns = [
    re_path(r"^_matrix/key/v2/query$", methods(post=keys.query_many)),
    re_path(r"^_matrix/key/v2/query/(?P<server_name>[^/]+)$", methods(get=keys.query_one)),
    re_path(F + r"event/(?P<event_id>[^/]+)$", methods(get=views.get_event)),
    re_path(F + r"state_ids/(?P<room_id>[^/]+)$", methods(get=views.state_ids)),
    re_path(F + r"state/(?P<room_id>[^/]+)$", methods(get=views.state)),
    re_path(F + r"event_auth/(?P<room_id>[^/]+)/(?P<event_id>[^/]+)$",
            methods(get=views.event_auth)),
    re_path(F + r"send/(?P<txn_id>[^/]+)$", methods(put=views.send_transaction)),
    re_path(F + r"get_missing_events/(?P<room_id>[^/]+)$", methods(post=views.get_missing_events)),
    re_path(F + r"backfill/(?P<room_id>[^/]+)$", methods(get=views.backfill)),
    re_path(F + r"make_join/" + RU, methods(get=M.make_join)),
    re_path(F + r"make_leave/" + RU, methods(get=M.make_leave)),
    re_path(F + r"make_knock/" + RU, methods(get=M.make_knock)),
    re_path(F2 + r"send_join/" + RE, methods(put=M.send_join)),
    re_path(F2 + r"send_leave/" + RE, methods(put=M.send_leave)),
    re_path(F + r"send_knock/" + RE, methods(put=M.send_knock)),
    re_path(F2 + r"invite/" + RE, methods(put=M.invite)),
    re_path(F + r"query/directory$", methods(get=views.query_directory)),
    re_path(F + r"query/profile$", methods(get=views.query_profile)),
    re_path(F + r"publicRooms$", methods(get=public_rooms_views.get_public_rooms,
                                         post=public_rooms_views.post_public_rooms)),
    re_path(F + r"user/devices/(?P<user_id>[^/]+)$", methods(get=user_devices)),
    re_path(F + r"user/keys/query$", methods(post=keys_query)),
    re_path(F + r"user/keys/claim$", methods(post=keys_claim)),
    re_path(F + r"media/download/(?P<media_id>[^/]+)$", methods(get=media.download)),
    re_path(F + r"media/thumbnail/(?P<media_id>[^/]+)$", methods(get=media.thumbnail)),
]
