"""Routes for typing, receipts, read markers, presence, push rules, pushers and notifications
under /_matrix/client/{r0,v3}/."""

from django.urls import re_path

from homeserver.api.client import ephemeral, push
from homeserver.api.routing import methods

P = r"^_matrix/client/(?:r0|v3)/"
R = r"rooms/(?P<room_id>[^/]+)/"
RULE = r"pushrules/(?P<scope>[^/]+)/(?P<kind>[^/]+)/(?P<rule_id>[^/]+)"


def _attr(name: str):
    async def get(request, scope, kind, rule_id):
        return await push.get_rule_attr(request, scope, kind, rule_id, name)

    async def put(request, scope, kind, rule_id):
        return await push.put_rule_attr(request, scope, kind, rule_id, name)

    return methods(get=get, put=put)


urlpatterns = [
    re_path(P + R + r"typing/(?P<user_id>[^/]+)$", methods(put=ephemeral.put_typing)),
    re_path(
        P + R + r"receipt/(?P<receipt_type>[^/]+)/(?P<event_id>[^/]+)$",
        methods(post=ephemeral.post_receipt),
    ),
    re_path(P + R + r"read_markers$", methods(post=ephemeral.post_read_markers)),
    re_path(
        P + r"presence/(?P<user_id>[^/]+)/status$",
        methods(get=ephemeral.get_presence, put=ephemeral.put_presence),
    ),
    re_path(P + r"pushrules/?$", methods(get=push.get_all_rules)),
    re_path(P + r"pushrules/global/?$", methods(get=push.get_global_rules)),
    re_path(P + RULE + r"/enabled$", _attr("enabled")),
    re_path(P + RULE + r"/actions$", _attr("actions")),
    re_path(
        P + RULE + r"$",
        methods(get=push.get_rule, put=push.put_rule, delete=push.delete_rule),
    ),
    re_path(P + r"pushers$", methods(get=push.get_pushers)),
    re_path(P + r"pushers/set$", methods(post=push.set_pusher)),
    re_path(P + r"notifications$", methods(get=push.get_notifications)),
]
