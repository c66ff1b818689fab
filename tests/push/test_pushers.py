"""GET /pushers and POST /pushers/set: create, update, delete (kind null), append semantics,
audit records without pushkeys, pushers leaving with their device, and each bad request with
nothing stored."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from audit.models import AuditRecord
from homeserver.models import Pusher
from tests.accounts.conftest import configure
from tests.ephemeral.chat import session

pytestmark = pytest.mark.django_db(transaction=True)

URL = "https://push.example.org/_matrix/push/v1/notify"
count_pushers = sync_to_async(lambda: Pusher.objects.count())
audit_count = sync_to_async(lambda: AuditRecord.objects.count())


def body(**changes):
    b = {"kind": "http", "app_id": "org.example.app", "pushkey": "key-1",
         "app_display_name": "Example", "device_display_name": "Phone", "lang": "en",
         "profile_tag": "tag", "data": {"url": URL, "format": "event_id_only"}}
    b.update(changes)
    return {k: v for k, v in b.items() if v is not ...}


async def set_pusher(api, tok, **changes):
    return await api.call("POST", "/pushers/set", body(**changes), token=tok)


async def test_create_list_update_delete(api):
    alice, tok = await session(api)
    assert (await api.call("GET", "/pushers", token=tok)).json() == {"pushers": []}
    r = await set_pusher(api, tok)
    assert (r.status_code, r.json()) == (200, {})
    (p,) = (await api.call("GET", "/pushers", token=tok)).json()["pushers"]
    assert p == {"pushkey": "key-1", "kind": "http", "app_id": "org.example.app",
                 "app_display_name": "Example", "device_display_name": "Phone",
                 "profile_tag": "tag", "lang": "en",
                 "data": {"url": URL, "format": "event_id_only"}}
    await set_pusher(api, tok, lang="de", data={"url": URL})
    (p,) = (await api.call("GET", "/pushers", token=tok)).json()["pushers"]
    assert p["lang"] == "de" and p["data"] == {"url": URL}
    await set_pusher(api, tok, pushkey="key-2")
    assert len((await api.call("GET", "/pushers", token=tok)).json()["pushers"]) == 2
    r = await api.call("POST", "/pushers/set",
                       {"kind": None, "app_id": "org.example.app", "pushkey": "key-1"}, token=tok)
    assert r.status_code == 200
    (p,) = (await api.call("GET", "/pushers", token=tok)).json()["pushers"]
    assert p["pushkey"] == "key-2"
    recs = await sync_to_async(list)(
        AuditRecord.objects.filter(target=alice, action__in=[1301, 1302]).order_by("seq"))
    assert [r.action for r in recs] == [1301, 1301, 1301, 1302]
    assert recs[0].details_dict["gateway"] == "https://push.example.org"
    assert all("key-" not in r.details for r in recs)


async def test_append_false_takes_the_pushkey_from_other_users(api):
    _, atok = await session(api)
    _, btok = await session(api)
    await set_pusher(api, atok)
    await set_pusher(api, btok, append=True)
    assert len((await api.call("GET", "/pushers", token=atok)).json()["pushers"]) == 1
    await set_pusher(api, btok)  # append defaults to false
    assert (await api.call("GET", "/pushers", token=atok)).json()["pushers"] == []
    assert len((await api.call("GET", "/pushers", token=btok)).json()["pushers"]) == 1


async def test_pushers_go_with_their_device(api):
    _, tok = await session(api)
    await set_pusher(api, tok)
    assert await count_pushers() == 1
    assert (await api.call("POST", "/logout", {}, token=tok)).status_code == 200
    assert await count_pushers() == 0


async def test_http_urls_need_the_operator_switch(api, settings):
    _, tok = await session(api)
    configure(settings, push={"allow_http_gateways": False})
    r = await set_pusher(api, tok, data={"url": "http://push.example.org/_matrix/push/v1/notify"})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    configure(settings, push={"allow_http_gateways": True})
    r = await set_pusher(api, tok, data={"url": "http://push.example.org/_matrix/push/v1/notify"})
    assert r.status_code == 200


async def test_bad_pushers_store_nothing(api, settings):
    configure(settings, push={"allow_http_gateways": False})
    _, tok = await session(api)
    before = await audit_count()
    cases = [
        (dict(kind=...), 400, "M_MISSING_PARAM"),
        (dict(app_id=...), 400, "M_MISSING_PARAM"),
        (dict(pushkey=...), 400, "M_MISSING_PARAM"),
        (dict(lang=...), 400, "M_MISSING_PARAM"),
        (dict(data=...), 400, "M_MISSING_PARAM"),
        (dict(app_id=5), 400, "M_BAD_JSON"),
        (dict(app_id="x" * 65), 400, "M_INVALID_PARAM"),
        (dict(pushkey="k" * 513), 400, "M_INVALID_PARAM"),
        (dict(kind="email"), 400, "M_INVALID_PARAM"),
        (dict(data="https://push.example.org"), 400, "M_BAD_JSON"),
        (dict(data={}), 400, "M_INVALID_PARAM"),
        (dict(data={"url": "ftp://push.example.org/_matrix/push/v1/notify"}), 400,
         "M_INVALID_PARAM"),
        (dict(data={"url": "http://push.example.org/_matrix/push/v1/notify"}), 400,
         "M_INVALID_PARAM"),
        (dict(data={"url": "https://push.example.org/notify"}), 400, "M_INVALID_PARAM"),
        (dict(data={"url": "https:///_matrix/push/v1/notify"}), 400, "M_INVALID_PARAM"),
        (dict(data={"url": URL, "format": "full"}), 400, "M_INVALID_PARAM"),
        (dict(data={"url": URL, "pad": "x" * 5000}), 400, "M_INVALID_PARAM"),
        (dict(append="yes"), 400, "M_BAD_JSON"),
        (dict(profile_tag=3), 400, "M_BAD_JSON"),
    ]
    for changes, status, errcode in cases:
        r = await set_pusher(api, tok, **changes)
        assert (r.status_code, r.json()["errcode"]) == (status, errcode), changes
    r = await api.call("POST", "/pushers/set", raw=b"nope", token=tok)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_NOT_JSON")
    r = await api.call("GET", "/pushers/set", token=tok)
    assert (r.status_code, r.json()["errcode"]) == (405, "M_UNRECOGNIZED")
    r = await api.call("GET", "/pushers")
    assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    assert await count_pushers() == 0 and await audit_count() == before
