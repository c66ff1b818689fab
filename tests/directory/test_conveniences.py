"""timestamp_to_event, TURN credentials and OpenID tokens over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from asgiref.sync import sync_to_async

from audit.actions import AuditAction
from homeserver.models import Account, OpenIdToken
from tests.accounts.conftest import aaudit_head, aaudit_since, configure
from tests.directory.helpers import (
    assert_error,
    audited,
    hs,
    join,
    new_room,
    put_state,
    q,
    session,
    snapshot,
)

pytestmark = pytest.mark.django_db(transaction=True)

V1 = "/_matrix/client/v1"


# --- timestamp_to_event ---------------------------------------------------------------------


async def timeline(api, token: str, room: str) -> list[dict]:
    r = await api.call("GET", f"/rooms/{q(room)}/messages?dir=f&limit=100", token=token)
    return r.json()["chunk"]


async def test_closest_event_both_directions(api):
    _, tok = await session(api)
    room = await new_room(api, tok)
    for i in range(4):
        await api.call("PUT", f"/rooms/{q(room)}/send/m.room.message/t{i}",
                       {"msgtype": "m.text", "body": str(i)}, token=tok)
        time.sleep(0.002)
    events = await timeline(api, tok, room)
    msgs = [e for e in events if e["type"] == "m.room.message"]
    target = msgs[2]["origin_server_ts"]
    path = f"{V1}/rooms/{q(room)}/timestamp_to_event"

    fwd = (await api.call("GET", f"{path}?ts={target}&dir=f", token=tok)).json()
    expected_f = next(e for e in events if e["origin_server_ts"] >= target)
    assert fwd == {"event_id": expected_f["event_id"],
                   "origin_server_ts": expected_f["origin_server_ts"]}
    back = (await api.call("GET", f"{path}?ts={target}&dir=b", token=tok)).json()
    expected_b = [e for e in events if e["origin_server_ts"] <= target][-1]
    assert back["event_id"] == expected_b["event_id"]
    # Before the room existed: forwards finds its create event; backwards finds nothing.
    first = (await api.call("GET", f"{path}?ts=0&dir=f", token=tok)).json()
    assert first["event_id"] == events[0]["event_id"]
    assert events[0]["type"] == "m.room.create"
    assert_error(await api.call("GET", f"{path}?ts=0&dir=b", token=tok), 404, "M_NOT_FOUND")
    future = msgs[-1]["origin_server_ts"] + 60_000
    assert_error(await api.call("GET", f"{path}?ts={future}&dir=f", token=tok), 404,
                 "M_NOT_FOUND")
    last = (await api.call("GET", f"{path}?ts={future}&dir=b", token=tok)).json()
    assert last["event_id"] == events[-1]["event_id"]


async def test_timestamp_respects_history_visibility(api):
    """Bob joins a `joined`-visibility room after a message he may not see: looking forwards
    from that message's timestamp finds his own join instead."""
    _, tok = await session(api)
    bob, b_tok = await session(api)
    room = await new_room(api, tok, preset="public_chat")
    await put_state(api, tok, room, "m.room.history_visibility", {"history_visibility": "joined"})
    time.sleep(0.002)  # distinct timestamps: ties would go to the earlier (visible) event
    r = await api.call("PUT", f"/rooms/{q(room)}/send/m.room.message/early",
                       {"msgtype": "m.text", "body": "before bob"}, token=tok)
    hidden = r.json()["event_id"]
    await join(api, b_tok, room)
    events = await timeline(api, tok, room)
    ts = next(e for e in events if e["event_id"] == hidden)["origin_server_ts"]
    path = f"{V1}/rooms/{q(room)}/timestamp_to_event?ts={ts}&dir=f"
    assert (await api.call("GET", path, token=tok)).json()["event_id"] == hidden
    bob_join = next(e for e in events if e["type"] == "m.room.member" and e["state_key"] == bob)
    assert (await api.call("GET", path, token=b_tok)).json()["event_id"] == bob_join["event_id"]


async def test_timestamp_bad_requests(api):
    _, tok = await session(api)
    _, outsider = await session(api)
    room = await new_room(api, tok)
    path = f"{V1}/rooms/{q(room)}/timestamp_to_event"
    cases = [
        (f"{path}?dir=f", tok, 400, "M_MISSING_PARAM"),
        (f"{path}?ts=1", tok, 400, "M_MISSING_PARAM"),
        (f"{path}?ts=soon&dir=f", tok, 400, "M_INVALID_PARAM"),
        (f"{path}?ts=1&dir=sideways", tok, 400, "M_INVALID_PARAM"),
        (f"{path}?ts=1&dir=f", outsider, 403, "M_FORBIDDEN"),
        (f"{V1}/rooms/{q('!nope:' + hs())}/timestamp_to_event?ts=1&dir=f", tok, 403,
         "M_FORBIDDEN"),
        (f"{path}?ts=1&dir=f", None, 401, "M_MISSING_TOKEN"),
    ]
    for url, token, status, errcode in cases:
        assert_error(await api.call("GET", url, token=token), status, errcode)


# --- TURN -------------------------------------------------------------------------------------


async def test_turn_server_unconfigured_and_configured(api, settings):
    user, tok = await session(api)
    assert (await api.call("GET", "/voip/turnServer", token=tok)).json() == {}
    assert_error(await api.call("GET", "/voip/turnServer"), 401, "M_MISSING_TOKEN")
    uris = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
    configure(settings, turn={"uris": tuple(uris), "shared_secret": "coturn-secret",
                              "user_lifetime_seconds": 3600})
    before = int(time.time())
    body = (await api.call("GET", "/voip/turnServer", token=tok)).json()
    assert body["uris"] == uris and body["ttl"] == 3600
    expiry, _, who = body["username"].partition(":")
    assert who == user and before + 3600 <= int(expiry) <= int(time.time()) + 3600
    # What a TURN server with static-auth-secret computes from the username.
    mac = hmac.new(b"coturn-secret", body["username"].encode(), hashlib.sha1).digest()
    assert body["password"] == base64.b64encode(mac).decode()
    assert_error(await api.call("POST", "/voip/turnServer", {}, token=tok), 405,
                 "M_UNRECOGNIZED")


# --- OpenID ------------------------------------------------------------------------------------


async def userinfo(api, token: str | None):
    url = "/_matrix/federation/v1/openid/userinfo"
    return await api.call("GET", url if token is None else f"{url}?access_token={q(token)}")


async def test_openid_token_round_trip(api, settings):
    configure(settings, openid={"token_lifetime_seconds": 600})
    alice, tok = await session(api)
    head = await aaudit_head()
    r = await api.call("POST", f"/user/{q(alice)}/openid/request_token", {}, token=tok)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["matrix_server_name"] == hs()
    assert body["expires_in"] == 600
    token = body["access_token"]
    assert (await userinfo(api, token)).json() == {"sub": alice}
    # Stored hashed only; audited without the token.
    stored = await sync_to_async(lambda: list(OpenIdToken.objects.values_list("token_hash",
                                                                             flat=True)))()
    assert token not in stored and hashlib.sha256(token.encode()).hexdigest() in stored
    assert audited(await aaudit_since(head)) == [
        (AuditAction.OPENID_TOKEN_ISSUED, alice, alice, {"expires_in": 600})]
    # An empty body is accepted too (the spec's body is an empty object).
    r = await api.call("POST", f"/user/{q(alice)}/openid/request_token", token=tok)
    assert r.status_code == 200


async def test_openid_rejects_access_tokens_and_vice_versa(api):
    """A_25479: a normal access token fails at userinfo; an OpenID token is no access token."""
    alice, tok = await session(api)
    oid = (await api.call("POST", f"/user/{q(alice)}/openid/request_token", {},
                          token=tok)).json()["access_token"]
    assert_error(await userinfo(api, tok), 401, "M_UNKNOWN_TOKEN")
    assert_error(await userinfo(api, "garbage"), 401, "M_UNKNOWN_TOKEN")
    assert_error(await userinfo(api, None), 400, "M_MISSING_PARAM")
    assert_error(await api.call("GET", "/account/whoami", token=oid), 401, "M_UNKNOWN_TOKEN")
    r = await api.call("POST", f"/user/{q(alice)}/openid/request_token", {}, token=oid)
    assert_error(r, 401, "M_UNKNOWN_TOKEN")


async def test_openid_expired_and_deactivated(api):
    alice, tok = await session(api)
    bob, b_tok = await session(api)
    a_oid = (await api.call("POST", f"/user/{q(alice)}/openid/request_token", {},
                            token=tok)).json()["access_token"]
    b_oid = (await api.call("POST", f"/user/{q(bob)}/openid/request_token", {},
                            token=b_tok)).json()["access_token"]
    digest = hashlib.sha256(a_oid.encode()).hexdigest()
    await sync_to_async(OpenIdToken.objects.filter(token_hash=digest).update)(
        valid_until_ms=int(time.time() * 1000) - 1)
    assert_error(await userinfo(api, a_oid), 401, "M_UNKNOWN_TOKEN")
    await sync_to_async(Account.objects.filter(user_id=bob).update)(deactivated=True)
    assert_error(await userinfo(api, b_oid), 401, "M_UNKNOWN_TOKEN")


async def test_openid_request_refusals_store_nothing(api):
    alice, tok = await session(api)
    bob, _ = await session(api)
    before = await snapshot()
    cases = [
        (bob, {}, tok, 403, "M_FORBIDDEN"),
        ("not-a-user", {}, tok, 400, "M_INVALID_PARAM"),
        (alice, {}, None, 401, "M_MISSING_TOKEN"),
    ]
    for user, body, token, status, errcode in cases:
        r = await api.call("POST", f"/user/{q(user)}/openid/request_token", body, token=token)
        assert_error(r, status, errcode)
    r = await api.call("POST", f"/user/{q(alice)}/openid/request_token", raw=b"{", token=tok)
    assert_error(r, 400, "M_NOT_JSON")
    r = await api.call("POST", f"/user/{q(alice)}/openid/request_token", raw=b"[]", token=tok)
    assert_error(r, 400, "M_BAD_JSON")
    r = await api.call("GET", f"/user/{q(alice)}/openid/request_token", token=tok)
    assert_error(r, 405, "M_UNRECOGNIZED")
    assert await snapshot() == before
