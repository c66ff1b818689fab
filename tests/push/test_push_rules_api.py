"""The push rules API over HTTP: the default ruleset, CRUD with before/after, the enabled and
actions endpoints, m.push_rules in /sync, rule changes changing unread counts, GET
/notifications, and each bad request with nothing stored."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async

from homeserver.models import AccountData, PushRuleSet
from tests.ephemeral.chat import counts, room_with, send, session, stream_position, sync

pytestmark = pytest.mark.django_db(transaction=True)

G = "/pushrules/global"
count_rulesets = sync_to_async(lambda: PushRuleSet.objects.count())
count_push_data = sync_to_async(lambda: AccountData.objects.filter(type="m.push_rules").count())


async def test_default_ruleset_and_single_rules(api):
    alice, tok = await session(api)
    everything = (await api.call("GET", "/pushrules/", token=tok)).json()
    assert set(everything) == {"global"}
    rules = everything["global"]
    assert set(rules) == {"override", "content", "room", "sender", "underride"}
    assert rules == (await api.call("GET", f"{G}/", token=tok)).json()
    master = (await api.call("GET", f"{G}/override/.m.rule.master", token=tok)).json()
    assert master == {"rule_id": ".m.rule.master", "default": True, "enabled": False,
                      "conditions": [], "actions": []}
    r = await api.call("GET", f"{G}/override/.m.rule.invite_for_me", token=tok)
    assert r.json()["conditions"][2]["pattern"] == alice
    r = await api.call("GET", f"{G}/underride/.m.rule.message/actions", token=tok)
    assert r.json() == {"actions": ["notify"]}
    r = await api.call("GET", f"{G}/override/.m.rule.suppress_notices/enabled", token=tok)
    assert r.json() == {"enabled": True}
    # The first sync brings the ruleset as account data, before any change.
    events = (await sync(api, tok))["account_data"]["events"]
    assert [e["content"] for e in events if e["type"] == "m.push_rules"] == [everything]


async def test_crud_with_ordering_and_sync(api):
    _, tok = await session(api)
    since = (await sync(api, tok))["next_batch"]
    cake = {"pattern": "cake", "actions": ["notify"]}
    assert (await api.call("PUT", f"{G}/content/cake", cake, token=tok)).status_code == 200
    r = await api.call("PUT", f"{G}/content/lie?before=cake",
                       {"pattern": "cake*lie", "actions": ["notify"]}, token=tok)
    assert r.status_code == 200
    r = await api.call("PUT", f"{G}/content/pie?after=cake", {"pattern": "pie", "actions": []},
                       token=tok)
    assert r.status_code == 200
    content = (await api.call("GET", f"{G}/", token=tok)).json()["content"]
    assert [c["rule_id"] for c in content] == ["lie", "cake", "pie", ".m.rule.contains_user_name"]
    assert content[0] == {"rule_id": "lie", "default": False, "enabled": True,
                          "pattern": "cake*lie", "actions": ["notify"]}
    r = await api.call("PUT", f"{G}/content/cake/enabled", {"enabled": False}, token=tok)
    assert r.status_code == 200
    r = await api.call("PUT", f"{G}/content/cake/actions",
                       {"actions": ["notify", {"set_tweak": "sound", "value": "bell"}]}, token=tok)
    assert r.status_code == 200
    rule = (await api.call("GET", f"{G}/content/cake", token=tok)).json()
    assert rule["enabled"] is False and rule["actions"][1]["value"] == "bell"
    assert (await api.call("DELETE", f"{G}/content/pie", token=tok)).status_code == 200
    r = await api.call("GET", f"{G}/content/pie", token=tok)
    assert (r.status_code, r.json()["errcode"]) == (404, "M_NOT_FOUND")
    # Each change reached /sync as m.push_rules; the latest content is the whole ruleset.
    events = (await sync(api, tok, since))["account_data"]["events"]
    (pr,) = [e for e in events if e["type"] == "m.push_rules"]
    assert [c["rule_id"] for c in pr["content"]["global"]["content"]] == [
        "lie", "cake", ".m.rule.contains_user_name"]


async def test_a_push_rule_change_changes_the_counts(api):
    _, atok = await session(api)
    bob, btok = await session(api)
    carol, ctok = await session(api)
    room = await room_with(api, atok, (bob, btok), (carol, ctok))
    quiet = await room_with(api, atok, (bob, btok), (carol, ctok))
    # Bob mutes `quiet` (a room rule without actions) and makes Carol's messages highlight.
    r = await api.call("PUT", f"{G}/room/{quote(quiet)}", {"actions": []}, token=btok)
    assert r.status_code == 200
    r = await api.call("PUT", f"{G}/sender/{quote(carol)}",
                       {"actions": ["notify", {"set_tweak": "highlight"}]}, token=btok)
    assert r.status_code == 200
    await send(api, atok, room, "hello")
    await send(api, atok, quiet, "ignored")
    await send(api, ctok, room, "important")
    resp = await sync(api, btok)
    assert counts(resp, room) == (2, 1)
    assert counts(resp, quiet) == (0, 0)
    # Enabling the master rule silences everything from then on.
    await api.call("PUT", f"{G}/override/.m.rule.master/enabled", {"enabled": True}, token=btok)
    await send(api, atok, room, "after master")
    assert counts(await sync(api, btok), room) == (2, 1)
    # GET /notifications lists what notified, newest first; only=highlight filters.
    # (The two invites notified Bob too: .m.rule.invite_for_me; his joins marked them read.)
    notes = (await api.call("GET", "/notifications", token=btok)).json()
    assert [n["event"]["content"].get("body", n["event"]["type"])
            for n in notes["notifications"]] == [
        "important", "hello", "m.room.member", "m.room.member"]
    first = notes["notifications"][0]
    assert first["room_id"] == room and first["read"] is False
    assert first["actions"] == ["notify", {"set_tweak": "highlight"}]
    assert [n["read"] for n in notes["notifications"]] == [False, False, True, True]
    assert isinstance(first["ts"], int) and "next_token" not in notes
    high = (await api.call("GET", "/notifications?only=highlight", token=btok)).json()
    assert [n["event"]["content"]["body"] for n in high["notifications"]] == ["important"]
    page = (await api.call("GET", "/notifications?limit=1", token=btok)).json()
    assert len(page["notifications"]) == 1 and "next_token" in page
    rest = (await api.call("GET", f"/notifications?limit=1&from={page['next_token']}",
                           token=btok)).json()
    assert rest["notifications"][0]["event"]["content"]["body"] == "hello"
    ev = first["event"]["event_id"]
    await api.call("POST", f"/rooms/{room}/receipt/m.read/{ev}", {}, token=btok)
    notes = (await api.call("GET", "/notifications", token=btok)).json()["notifications"]
    assert all(n["read"] for n in notes)
    r = await api.call("GET", "/notifications?from=abc", token=btok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    r = await api.call("GET", "/notifications?limit=x", token=btok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")


async def test_bad_rule_requests_store_nothing(api):
    _, tok = await session(api)
    before = await stream_position()
    cases = [
        ("PUT", f"{G}/override/.mine", {"actions": []}, 400, "M_INVALID_PARAM"),
        ("PUT", f"{G}/override/r", {"conditions": []}, 400, "M_BAD_JSON"),
        ("PUT", f"{G}/override/r", {"actions": "notify"}, 400, "M_BAD_JSON"),
        ("PUT", f"{G}/override/r", {"actions": ["sing"]}, 400, "M_INVALID_PARAM"),
        ("PUT", f"{G}/override/r", {"actions": [], "conditions": [{"key": "type"}]}, 400,
         "M_BAD_JSON"),
        ("PUT", f"{G}/override/r", {"actions": [], "conditions": [
            {"kind": "event_match", "key": "type"}]}, 400, "M_INVALID_PARAM"),
        ("PUT", f"{G}/content/r", {"actions": []}, 400, "M_BAD_JSON"),
        ("PUT", f"{G}/room/not-a-room", {"actions": []}, 400, "M_INVALID_PARAM"),
        ("PUT", f"{G}/sideways/r", {"actions": []}, 400, "M_INVALID_PARAM"),
        ("PUT", "/pushrules/device/override/r", {"actions": []}, 400, "M_INVALID_PARAM"),
        ("PUT", f"{G}/override/r?before=missing", {"actions": []}, 400, "M_INVALID_PARAM"),
        ("PUT", f"{G}/override/r?after=.m.rule.master", {"actions": []}, 400,
         "M_INVALID_PARAM"),
        ("GET", f"{G}/override/unknown", None, 404, "M_NOT_FOUND"),
        ("DELETE", f"{G}/override/unknown", None, 404, "M_NOT_FOUND"),
        ("DELETE", f"{G}/override/.m.rule.master", None, 400, "M_INVALID_PARAM"),
        ("GET", f"{G}/override/unknown/enabled", None, 404, "M_NOT_FOUND"),
        ("PUT", f"{G}/override/unknown/enabled", {"enabled": True}, 404, "M_NOT_FOUND"),
        ("PUT", f"{G}/override/unknown/actions", {"actions": []}, 404, "M_NOT_FOUND"),
        ("PUT", f"{G}/override/.m.rule.master/enabled", {"enabled": "yes"}, 400, "M_BAD_JSON"),
        ("PUT", f"{G}/override/.m.rule.master/actions", {}, 400, "M_BAD_JSON"),
        ("PUT", f"{G}/underride/.m.rule.message", {"actions": []}, 400, "M_INVALID_PARAM"),
    ]
    for method, path, body, status, errcode in cases:
        r = await api.call(method, path, body, token=tok)
        assert (r.status_code, r.json()["errcode"]) == (status, errcode), (method, path, body)
    r = await api.call("PUT", f"{G}/override/r", raw=b"{", token=tok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_NOT_JSON")
    r = await api.call("POST", f"{G}/override/r", {"actions": []}, token=tok)
    assert (r.status_code, r.json()["errcode"]) == (405, "M_UNRECOGNIZED")
    assert await count_rulesets() == 0 and await count_push_data() == 0
    assert await stream_position() == before
