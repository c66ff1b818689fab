"""Unauthenticated discovery endpoints and the Matrix error/CORS conventions."""

from __future__ import annotations

import copy

import pytest
import signedjson.key
import signedjson.sign
from django.test import Client, override_settings

from homeserver.config import load_config
from homeserver.protocol.unpadded_base64 import decode_base64

pytestmark = pytest.mark.django_db


def test_versions_advertises_v1_11():
    r = Client().get("/_matrix/client/versions")
    assert r.status_code == 200
    assert "v1.11" in r.json()["versions"]
    assert r["Access-Control-Allow-Origin"] == "*"


def test_key_server_document_verifies_with_signedjson():
    doc = Client().get("/_matrix/key/v2/server").json()
    server = doc["server_name"]
    (key_id, key), = doc["verify_keys"].items()
    verify_key = signedjson.key.decode_verify_key_bytes(key_id, decode_base64(key["key"]))
    signedjson.sign.verify_signed_json(doc, server, verify_key)  # raises on a bad signature
    assert key_id.startswith("ed25519:")
    tampered = copy.deepcopy(doc)
    tampered["valid_until_ts"] += 1
    with pytest.raises(signedjson.sign.SignatureVerifyException):
        signedjson.sign.verify_signed_json(tampered, server, verify_key)
    forged = copy.deepcopy(doc)
    sig = forged["signatures"][server][key_id]
    forged["signatures"][server][key_id] = ("A" if sig[0] != "A" else "B") + sig[1:]
    with pytest.raises(signedjson.sign.SignatureVerifyException):
        signedjson.sign.verify_signed_json(forged, server, verify_key)


def test_key_server_publishes_old_verify_keys():
    cfg = load_config(None, {"PALISADE__OLD_VERIFY_KEYS": '{"ed25519:old" = {key = "AAAA", '
                                                           'expired_ts = 1000}}'})
    with override_settings(PALISADE=cfg):
        doc = Client().get("/_matrix/key/v2/server").json()
    assert doc["old_verify_keys"] == {"ed25519:old": {"key": "AAAA", "expired_ts": 1000}}


def test_well_known_client_and_unset_server_delegation():
    body = Client().get("/.well-known/matrix/client").json()
    assert body["m.homeserver"]["base_url"] == "http://127.0.0.1:8008"
    r = Client().get("/.well-known/matrix/server")
    assert r.status_code == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    cfg = load_config(None, {"PALISADE__WELL_KNOWN__SERVER": '"matrix.example.org:443"'})
    with override_settings(PALISADE=cfg):
        assert Client().get("/.well-known/matrix/server").json() == {
            "m.server": "matrix.example.org:443"}


def test_well_known_support_from_config():
    assert Client().get("/.well-known/matrix/support").status_code == 404
    cfg = load_config(None, {"PALISADE__WELL_KNOWN__SUPPORT_PAGE": '"https://help.example"'})
    with override_settings(PALISADE=cfg):
        assert Client().get("/.well-known/matrix/support").json() == {
            "support_page": "https://help.example"}


def test_unknown_endpoint_and_wrong_method_are_m_unrecognized():
    r = Client().get("/_matrix/client/v3/no_such_thing")
    assert r.status_code == 404 and r.json()["errcode"] == "M_UNRECOGNIZED"
    r = Client().post("/_matrix/client/versions")
    assert r.status_code == 405 and r.json()["errcode"] == "M_UNRECOGNIZED"


def test_cors_preflight_needs_no_auth():
    r = Client().options("/_matrix/client/v3/sync")
    assert r.status_code == 204
    assert "Authorization" in r["Access-Control-Allow-Headers"]


def test_federation_version():
    body = Client().get("/_matrix/federation/v1/version").json()
    assert body["server"]["name"] == "Palisade"
