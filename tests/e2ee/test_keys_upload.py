"""POST /keys/upload: device keys, one-time and fallback keys; every bad upload is refused with
its errcode and stores nothing."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from audit.actions import AuditAction
from homeserver.models import DeviceKeys, FallbackKey, OneTimeKey
from tests.accounts.conftest import aaudit_head, aaudit_since, amake_user
from tests.e2ee.clientkeys import ClientDevice, login_device, sign, upload

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def stored(user_id: str) -> tuple[int, int, int]:
    return (DeviceKeys.objects.filter(user_id=user_id).count(),
            OneTimeKey.objects.filter(user_id=user_id).count(),
            FallbackKey.objects.filter(user_id=user_id).count())


async def new_device(api) -> ClientDevice:
    return await login_device(api, await amake_user())


async def test_upload_device_and_one_time_keys_counts_and_audit(api):
    dev = await new_device(api)
    head = await aaudit_head()
    body = await upload(api, dev, {"device_keys": dev.device_keys(),
                                   "one_time_keys": dev.one_time_keys(5)})
    assert body == {"one_time_key_counts": {"signed_curve25519": 5}}
    # A count-only request (empty body), as clients poll it.
    assert (await upload(api, dev, {}))["one_time_key_counts"] == {"signed_curve25519": 5}
    body = await upload(api, dev, {"one_time_keys": dev.one_time_keys(3)})
    assert body["one_time_key_counts"] == {"signed_curve25519": 8}
    records = [r for r in await aaudit_since(head)
               if r.action == AuditAction.DEVICE_KEYS_UPLOADED]
    assert len(records) == 1
    assert dev.device_id in records[0].details and dev.ed25519_public not in records[0].details
    # Re-uploading identical device keys is not a change (no new audit record).
    await upload(api, dev, {"device_keys": dev.device_keys()})
    again = [r for r in await aaudit_since(head) if r.action == AuditAction.DEVICE_KEYS_UPLOADED]
    assert len(again) == 1


async def test_reupload_of_same_one_time_key_is_idempotent_but_a_different_one_is_refused(api):
    dev = await new_device(api)
    keys = dev.one_time_keys(2)
    await upload(api, dev, {"device_keys": dev.device_keys(), "one_time_keys": keys})
    body = await upload(api, dev, {"one_time_keys": keys})
    assert body["one_time_key_counts"]["signed_curve25519"] == 2
    name = next(iter(keys))
    other = dev.one_time_keys(1)
    clash = {name: next(iter(other.values()))}
    r = await api.call("POST", "/keys/upload", {"one_time_keys": clash}, token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert await stored(dev.user_id) == (1, 2, 0)


async def test_bad_device_keys_are_refused_and_nothing_is_stored(api):
    dev = await new_device(api)
    other = await new_device(api)
    good = dev.device_keys()
    curve = good["keys"][f"curve25519:{dev.device_id}"]
    cases = {
        "wrong_user": (dev.device_keys(user_id=other.user_id), "M_INVALID_PARAM"),
        "wrong_device": (dev.device_keys(device_id="SOMEOTHER"), "M_INVALID_PARAM"),
        "bad_signature": (sign({k: v for k, v in good.items() if k != "signatures"},
                               dev.user_id, dev.key_id, other.ed25519), "M_INVALID_SIGNATURE"),
        "unsigned": ({k: v for k, v in good.items() if k != "signatures"}, "M_BAD_JSON"),
        "no_ed25519": (dev.device_keys(keys={f"curve25519:{dev.device_id}": curve}),
                       "M_INVALID_PARAM"),
        "short_key": (dev.device_keys(keys={**good["keys"],
                                            f"curve25519:{dev.device_id}": "AAAA"}),
                      "M_INVALID_PARAM"),
        "keys_not_object": (dev.device_keys(keys=["x"]), "M_BAD_JSON"),
        "algorithms_not_list": (dev.device_keys(algorithms="m.olm.v1"), "M_BAD_JSON"),
        "key_of_other_device": (dev.device_keys(keys={**good["keys"], "curve25519:OTHER": "x"}),
                                "M_INVALID_PARAM"),
        "not_object": ("keys", "M_BAD_JSON"),
    }
    for case, (bad, want) in cases.items():
        r = await api.call("POST", "/keys/upload",
                           {"device_keys": bad, "one_time_keys": dev.one_time_keys(2)},
                           token=dev.token)
        assert (r.status_code, r.json()["errcode"]) == (400, want), (case, r.json())
        assert await stored(dev.user_id) == (0, 0, 0), case


async def test_tampered_device_keys_fail_the_signature_check(api):
    dev = await new_device(api)
    keys = dev.device_keys()
    keys["algorithms"] = ["m.megolm.v1.aes-sha2"]  # changed after signing
    r = await api.call("POST", "/keys/upload", {"device_keys": keys}, token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_SIGNATURE")
    assert await stored(dev.user_id) == (0, 0, 0)


async def test_bad_one_time_and_fallback_keys_are_refused_and_nothing_is_stored(api):
    dev = await new_device(api)
    other = await new_device(api)
    await upload(api, dev, {"device_keys": dev.device_keys()})
    name, key = next(iter(dev.one_time_keys(1).items()))
    forged = sign({"key": key["key"]}, dev.user_id, dev.key_id, other.ed25519)
    cases = {
        "bad_signature": ({name: forged}, "M_INVALID_SIGNATURE"),
        "plain_string": ({name: key["key"]}, "M_INVALID_PARAM"),
        "no_key": ({name: {"signatures": key["signatures"]}}, "M_BAD_JSON"),
        "bad_name": ({"signed_curve25519": key}, "M_INVALID_PARAM"),
        "long_algorithm": ({"x" * 130 + ":AAAA": key}, "M_INVALID_PARAM"),
        "not_object": (["x"], "M_BAD_JSON"),
        "short_key": ({name: dev.sign({"key": "AAAA"})}, "M_INVALID_PARAM"),
    }
    for case, (bad, want) in cases.items():
        for field in ("one_time_keys", "fallback_keys"):
            # Good keys in the same request are not stored either.
            body = {field: {**dev.one_time_keys(1), **bad} if isinstance(bad, dict) else bad}
            r = await api.call("POST", "/keys/upload", body, token=dev.token)
            assert (r.status_code, r.json()["errcode"]) == (400, want), (case, field, r.json())
            assert await stored(dev.user_id) == (1, 0, 0), (case, field)


async def test_signed_keys_need_device_keys_first(api):
    dev = await new_device(api)
    r = await api.call("POST", "/keys/upload", {"one_time_keys": dev.one_time_keys(1)},
                       token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert await stored(dev.user_id) == (0, 0, 0)


async def test_one_fallback_key_per_algorithm(api):
    dev = await new_device(api)
    r = await api.call("POST", "/keys/upload", {
        "device_keys": dev.device_keys(), "fallback_keys": dev.one_time_keys(2, fallback=True),
    }, token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    assert await stored(dev.user_id) == (0, 0, 0)


async def test_not_json_and_no_token(api):
    dev = await new_device(api)
    r = await api.call("POST", "/keys/upload", raw=b"{nope", token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_NOT_JSON")
    r = await api.call("POST", "/keys/upload", {})
    assert (r.status_code, r.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    r = await api.call("GET", "/keys/upload", token=dev.token)
    assert (r.status_code, r.json()["errcode"]) == (405, "M_UNRECOGNIZED")
