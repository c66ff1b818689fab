"""Push rules, pushers and notifications: thin views over services.push. Spec: client-server
API "Push Notifications" (Push Rules: API, POST /pushers/set, GET /pushers,
GET /notifications)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from homeserver.api.auth import require_auth
from homeserver.api.body import json_body
from homeserver.api.params import int_param
from homeserver.api.responses import json_response
from homeserver.services.push import notifications, pushers, rules

run = sync_to_async


async def get_all_rules(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    return json_response(await run(rules.get_ruleset)(req.user_id))


async def get_global_rules(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    return json_response((await run(rules.get_ruleset)(req.user_id))["global"])


async def get_rule(request: HttpRequest, scope: str, kind: str, rule_id: str) -> HttpResponse:
    req = await require_auth(request)
    return json_response(await run(rules.get_rule)(req.user_id, scope, kind, rule_id))


async def put_rule(request: HttpRequest, scope: str, kind: str, rule_id: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    q = request.GET
    await run(rules.do_put_rule)(req.user_id, scope, kind, rule_id, body, q.get("before"),
                                 q.get("after"))
    return json_response({})


async def delete_rule(request: HttpRequest, scope: str, kind: str, rule_id: str) -> HttpResponse:
    req = await require_auth(request)
    await run(rules.do_delete_rule)(req.user_id, scope, kind, rule_id)
    return json_response({})


async def get_rule_attr(request: HttpRequest, scope: str, kind: str, rule_id: str,
                        attr: str) -> HttpResponse:
    req = await require_auth(request)
    return json_response(await run(rules.get_rule_attr)(req.user_id, scope, kind, rule_id, attr))


async def put_rule_attr(request: HttpRequest, scope: str, kind: str, rule_id: str,
                        attr: str) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    await run(rules.do_set_rule_attr)(req.user_id, scope, kind, rule_id, attr, body)
    return json_response({})


async def get_pushers(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    return json_response(await run(pushers.list_pushers)(req.user_id))


async def set_pusher(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    body = json_body(request)
    await run(pushers.do_set_pusher)(req.user_id, req.device_id, body)
    return json_response({})


async def get_notifications(request: HttpRequest) -> HttpResponse:
    req = await require_auth(request)
    q = request.GET
    body = await run(notifications.get_notifications)(
        req.user_id, q.get("from"), int_param(q, "limit", notifications.DEFAULT_LIMIT),
        q.get("only"),
    )
    return json_response(body)
