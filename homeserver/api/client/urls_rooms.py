"""Routes for rooms, sync and capabilities under /_matrix/client/{r0,v3}/."""

from django.urls import re_path

from homeserver.api.client import rooms, sync
from homeserver.api.routing import methods

P = r"^_matrix/client/(?:r0|v3)/"
R = r"rooms/(?P<room_id>[^/]+)/"

urlpatterns = [
    re_path(P + r"createRoom$", methods(post=rooms.create_room)),
    re_path(P + r"join/(?P<room_id_or_alias>[^/]+)$", methods(post=rooms.join)),
    re_path(P + r"joined_rooms$", methods(get=rooms.joined_rooms)),
    re_path(P + r"knock/(?P<room_id_or_alias>[^/]+)$", methods(post=rooms.knock)),
    re_path(P + r"sync$", methods(get=sync.get_sync)),
    re_path(P + r"capabilities$", methods(get=sync.capabilities)),
    re_path(P + R + r"join$", methods(post=lambda r, room_id: rooms.join(r, room_id))),
    re_path(P + R + r"invite$", methods(post=rooms.invite)),
    re_path(P + R + r"leave$", methods(post=rooms.leave)),
    re_path(P + R + r"forget$", methods(post=rooms.forget)),
    re_path(P + R + r"kick$", methods(post=rooms.kick)),
    re_path(P + R + r"ban$", methods(post=rooms.ban)),
    re_path(P + R + r"unban$", methods(post=rooms.unban)),
    re_path(P + R + r"send/(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)$", methods(put=rooms.send)),
    re_path(P + R + r"state$", methods(get=rooms.get_state)),
    re_path(
        P + R + r"state/(?P<event_type>[^/]+)/?$",
        methods(get=rooms.get_state_event, put=rooms.put_state),
    ),
    re_path(
        P + R + r"state/(?P<event_type>[^/]+)/(?P<state_key>[^/]+)$",
        methods(get=rooms.get_state_event, put=rooms.put_state),
    ),
    re_path(P + R + r"redact/(?P<event_id>[^/]+)/(?P<txn_id>[^/]+)$", methods(put=rooms.redact)),
    re_path(P + R + r"event/(?P<event_id>[^/]+)$", methods(get=rooms.get_event)),
    re_path(P + R + r"context/(?P<event_id>[^/]+)$", methods(get=rooms.context)),
    re_path(P + R + r"messages$", methods(get=rooms.messages)),
    re_path(P + R + r"members$", methods(get=rooms.members)),
    re_path(P + R + r"joined_members$", methods(get=rooms.joined_members)),
    re_path(
        r"^_matrix/client/v1/" + R + r"relations/(?P<event_id>[^/]+)$", methods(get=rooms.relations)
    ),
    re_path(
        r"^_matrix/client/v1/" + R + r"relations/(?P<event_id>[^/]+)/(?P<rel_type>[^/]+)$",
        methods(get=rooms.relations),
    ),
    re_path(
        r"^_matrix/client/v1/"
        + R
        + r"relations/(?P<event_id>[^/]+)/(?P<rel_type>[^/]+)/(?P<event_type>[^/]+)$",
        methods(get=rooms.relations),
    ),
]
