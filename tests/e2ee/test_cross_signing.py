"""Cross-signing: uploading master/self-signing/user-signing keys (user-interactive auth unless
it is the first upload or an identical retry), signatures on devices and master keys with
per-key failures, and who sees what in /keys/query."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from audit.actions import AuditAction
from homeserver.models import CrossSigningKey, KeySignature
from tests.accounts.conftest import PASSWORD, aaudit_head, aaudit_since, amake_user
from tests.e2ee.clientkeys import SigningKeyPair, login_device, shared_room, sign, sync, upload

pytestmark = pytest.mark.django_db(transaction=True)

count_keys = sync_to_async(lambda: CrossSigningKey.objects.count())
count_sigs = sync_to_async(lambda: KeySignature.objects.count())


class Identity:
    """A user's three cross-signing key pairs and the objects they upload."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.master, self.ssk, self.usk = SigningKeyPair(), SigningKeyPair(), SigningKeyPair()

    def key(self, pair: SigningKeyPair, usage: str, signed_by: SigningKeyPair | None) -> dict:
        obj = {"user_id": self.user_id, "usage": [usage], "keys": {pair.key_id: pair.public}}
        return sign(obj, self.user_id, signed_by.key_id, signed_by.private) if signed_by else obj

    def upload_body(self) -> dict:
        return {"master_key": self.key(self.master, "master", None),
                "self_signing_key": self.key(self.ssk, "self_signing", self.master),
                "user_signing_key": self.key(self.usk, "user_signing", self.master)}


def password(user_id: str, session: str) -> dict:
    return {"type": "m.login.password", "session": session, "password": PASSWORD,
            "identifier": {"type": "m.id.user", "user": user_id}}


async def publish(api, dev, ident: Identity) -> None:
    r = await api.call("POST", "/keys/device_signing/upload", ident.upload_body(),
                       token=dev.token)
    assert r.status_code == 200, r.json()


async def test_first_upload_needs_no_uia_then_replacing_does(api):
    dev = await login_device(api, await amake_user())
    ident = Identity(dev.user_id)
    head = await aaudit_head()
    await publish(api, dev, ident)
    # An identical retry (lost response) needs no UIA and changes nothing.
    await publish(api, dev, ident)
    records = [r for r in await aaudit_since(head)
               if r.action == AuditAction.CROSS_SIGNING_KEYS_CHANGED]
    assert len(records) == 1 and ident.master.key_id in records[0].details
    # A device ID may not be one of the user's cross-signing public keys.
    r = await api.call("POST", "/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": dev.user_id},
        "password": PASSWORD, "device_id": ident.ssk.public})
    assert (r.status_code, r.json()["errcode"]) == (400, "M_INVALID_PARAM")
    # A new master key must be confirmed with the password.
    new = Identity(dev.user_id)
    r = await api.call("POST", "/keys/device_signing/upload", new.upload_body(), token=dev.token)
    assert r.status_code == 401 and r.json()["flows"] == [{"stages": ["m.login.password"]}]
    q = await api.call("POST", "/keys/query", {"device_keys": {dev.user_id: []}},
                       token=dev.token)
    assert q.json()["master_keys"][dev.user_id]["keys"] == {ident.master.key_id:
                                                           ident.master.public}
    body = {**new.upload_body(), "auth": password(dev.user_id, r.json()["session"])}
    r = await api.call("POST", "/keys/device_signing/upload", body, token=dev.token)
    assert r.status_code == 200, r.json()
    q = await api.call("POST", "/keys/query", {"device_keys": {dev.user_id: []}},
                       token=dev.token)
    assert q.json()["master_keys"][dev.user_id]["keys"] == {new.master.key_id: new.master.public}
    assert q.json()["user_signing_keys"][dev.user_id]["keys"] == {new.usk.key_id: new.usk.public}


async def test_bad_cross_signing_uploads_store_nothing(api):
    dev = await login_device(api, await amake_user())
    ident = Identity(dev.user_id)
    other = Identity(dev.user_id)
    cases = [
        # self-signing key signed by some other master key
        ({"master_key": ident.key(ident.master, "master", None),
          "self_signing_key": ident.key(ident.ssk, "self_signing", other.master)},
         400, "M_INVALID_SIGNATURE"),
        # no master key anywhere to check the self-signing key against
        ({"self_signing_key": ident.key(ident.ssk, "self_signing", ident.master)},
         400, "M_MISSING_PARAM"),
        ({"master_key": {**ident.key(ident.master, "master", None), "user_id": "@x:y"}},
         400, "M_INVALID_PARAM"),
        ({"master_key": ident.key(ident.master, "self_signing", None)}, 400, "M_INVALID_PARAM"),
        ({"master_key": {**ident.key(ident.master, "master", None),
                         "keys": {"ed25519:abc": "abc"}}}, 400, "M_INVALID_PARAM"),
        ({"master_key": "key"}, 400, "M_BAD_JSON"),
    ]
    for body, status, errcode in cases:
        r = await api.call("POST", "/keys/device_signing/upload", body, token=dev.token)
        assert (r.status_code, r.json()["errcode"]) == (status, errcode), body
    assert await count_keys() == 0
    # A public key equal to one of the user's device IDs is refused.
    pair = SigningKeyPair()
    clash = await login_device(api, dev.user_id, device_id=pair.public)
    body = {"master_key": {"user_id": dev.user_id, "usage": ["master"],
                           "keys": {pair.key_id: pair.public}}}
    r = await api.call("POST", "/keys/device_signing/upload", body, token=clash.token)
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert await count_keys() == 0


async def test_signatures_upload_and_visibility(api):
    alice = await login_device(api, await amake_user())
    bob = await login_device(api, await amake_user())
    carol = await login_device(api, await amake_user())
    await shared_room(api, alice, bob, carol)
    for d in (alice, bob):
        await upload(api, d, {"device_keys": d.device_keys()})
    ai, bi = Identity(alice.user_id), Identity(bob.user_id)
    await publish(api, alice, ai)
    await publish(api, bob, bi)
    b0 = await sync(api, bob)

    # Alice's self-signing key signs her device; her device signs her master key; her
    # user-signing key signs Bob's master key. One bad signature fails alone.
    dev_signed = sign(alice.device_keys(), alice.user_id, ai.ssk.key_id, ai.ssk.private)
    master_signed = alice.sign(ai.key(ai.master, "master", None))
    bob_master_signed = sign(bi.key(bi.master, "master", None), alice.user_id, ai.usk.key_id,
                             ai.usk.private)
    forged = sign(bi.key(bi.master, "master", None), alice.user_id, ai.usk.key_id,
                  SigningKeyPair().private)
    head = await aaudit_head()
    r = await api.call("POST", "/keys/signatures/upload", {
        alice.user_id: {alice.device_id: dev_signed, ai.master.public: master_signed,
                        "UNKNOWNDEVICE": dev_signed},
        bob.user_id: {bi.master.public: bob_master_signed},
    }, token=alice.token)
    assert r.status_code == 200, r.json()
    assert r.json()["failures"] == {
        alice.user_id: {"UNKNOWNDEVICE": {"errcode": "M_NOT_FOUND", "error": "Unknown key"}}}
    r = await api.call("POST", "/keys/signatures/upload",
                       {bob.user_id: {bi.master.public: forged}}, token=alice.token)
    assert r.json()["failures"][bob.user_id][bi.master.public]["errcode"] == "M_INVALID_SIGNATURE"
    assert await count_sigs() == 3
    records = [x for x in await aaudit_since(head)
               if x.action == AuditAction.KEY_SIGNATURES_UPLOADED]
    assert len(records) == 1

    # Bob sees the self-signing signature on Alice's device and her device's signature on her
    # master key, her self-signing key, but not her user-signing key or its signatures.
    q = (await api.call("POST", "/keys/query", {"device_keys": {alice.user_id: [],
                                                                bob.user_id: []}},
                        token=bob.token)).json()
    dev_sigs = q["device_keys"][alice.user_id][alice.device_id]["signatures"][alice.user_id]
    assert set(dev_sigs) == {alice.key_id, ai.ssk.key_id}
    assert set(q["master_keys"][alice.user_id]["signatures"][alice.user_id]) == {alice.key_id}
    assert q["self_signing_keys"][alice.user_id]["keys"] == {ai.ssk.key_id: ai.ssk.public}
    assert q["user_signing_keys"] == {bob.user_id: bi.key(bi.usk, "user_signing", bi.master)}
    assert alice.user_id not in q["master_keys"][bob.user_id].get("signatures", {})
    # Alice sees her own user-signing signature on Bob's master key; Carol does not.
    qa = (await api.call("POST", "/keys/query", {"device_keys": {bob.user_id: []}},
                         token=alice.token)).json()
    assert ai.usk.key_id in qa["master_keys"][bob.user_id]["signatures"][alice.user_id]
    qc = (await api.call("POST", "/keys/query", {"device_keys": {bob.user_id: []}},
                         token=carol.token)).json()
    assert alice.user_id not in qc["master_keys"][bob.user_id].get("signatures", {})
    # The signatures are a device-list change of Alice for everyone sharing a room.
    assert alice.user_id in (await sync(api, bob, b0["next_batch"]))["device_lists"]["changed"]


async def test_signature_on_a_modified_object_is_refused(api):
    alice = await login_device(api, await amake_user())
    await upload(api, alice, {"device_keys": alice.device_keys()})
    ai = Identity(alice.user_id)
    await publish(api, alice, ai)
    tampered = alice.device_keys(algorithms=["x"])
    signed = sign(tampered, alice.user_id, ai.ssk.key_id, ai.ssk.private)
    r = await api.call("POST", "/keys/signatures/upload",
                       {alice.user_id: {alice.device_id: signed}}, token=alice.token)
    assert r.json()["failures"][alice.user_id][alice.device_id]["errcode"] == \
        "M_INVALID_SIGNATURE"
    assert await count_sigs() == 0
    r = await api.call("POST", "/keys/signatures/upload", {alice.user_id: ["x"]},
                       token=alice.token)
    assert (r.status_code, r.json()["errcode"]) == (400, "M_BAD_JSON")
