"""The TI-Messenger federation list (REQUIREMENTS.md A_25534, "list source", A_25537): fetched from
a real HTTP server on a loopback port, signed as a JWS by a certificate of a test CA made here
with `cryptography`, verified against the configured trust anchor, kept current, and deciding
who federates with us."""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from django.utils import timezone

from audit.actions import AuditAction
from compliance import timlist
from compliance.federation_access import decide
from compliance.models import TiMessengerFederationList
from compliance.timlist import refresh as timlist_refresh
from tests.accounts.conftest import audit_head, audit_since, configure

pytestmark = pytest.mark.django_db

LISTED = "hospital-a.tim.example"
NOW = datetime.datetime.now(datetime.UTC)


# --- a test PKI -----------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ku(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)


@dataclass
class Ca:
    key: Any
    cert: x509.Certificate

    @classmethod
    def create(cls, cn: str) -> Ca:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(NOW - datetime.timedelta(days=1))
                .not_valid_after(NOW + datetime.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
                .add_extension(_ku(sign=False, ca=True), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    def issue(self, cn: str, key: Any) -> x509.Certificate:
        return (x509.CertificateBuilder().subject_name(_name(cn))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(NOW - datetime.timedelta(days=1))
                .not_valid_after(NOW + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_ku(sign=True, ca=False), critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()), critical=False)
                .sign(self.key, hashes.SHA256()))

    def pem(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Signer:
    alg: str
    key: Any
    chain: list[x509.Certificate]

    @classmethod
    def create(cls, ca: Ca, alg: str = "ES256") -> Signer:
        key = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" \
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(alg, key, [ca.issue("FD VZD federation list signer", key)])

    def sign(self, payload: dict | bytes, header: dict | None = None) -> bytes:
        hdr = {"alg": self.alg, "typ": "JWT", "x5c": [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
            for c in self.chain]} if header is None else header
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        signing_input = f"{b64url(json.dumps(hdr).encode())}.{b64url(body)}".encode()
        if self.alg == "ES256":
            r, s = decode_dss_signature(self.key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        elif self.alg == "RS256":
            sig = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            sig = self.key.sign(signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                           salt_length=32), hashes.SHA256())
        return signing_input + b"." + b64url(sig).encode()


def federation_list(version: int, *domains: str, insurance: tuple[str, ...] = ()) -> dict:
    return {"version": version, "domainList": [
        {"domain": d, "telematikID": f"1-{i}", "isInsurance": d in insurance,
         "ik": ["109500969"] if d in insurance else [], "timAnbieter": "Anbieter GmbH"}
        for i, d in enumerate(domains)]}


# --- the list server: a real HTTP server on a loopback port ---------------------------------

@dataclass
class ListServer:
    url: str = ""
    body: bytes = b""
    status: int = 200
    requests: list[str] = field(default_factory=list)

    def serve(self, body: bytes, status: int = 200) -> None:
        self.body, self.status = body, status

    def versions_asked(self) -> list[str]:
        return [p.partition("version=")[2] for p in self.requests]


@pytest.fixture
def list_server() -> Iterator[ListServer]:
    state = ListServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if state.status == 204:
                self.send_response(204)
                self.end_headers()
                return
            self.send_response(state.status)
            self.send_header("Content-Type", "application/jose")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = (f"http://127.0.0.1:{server.server_address[1]}"
                 "/tim-provider-services/FederationList/federationList.jws")
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    anchor, rogue = Ca.create("Test TI root CA"), Ca.create("Rogue CA")
    return {"anchor": anchor, "rogue": rogue, "anchor_pem": anchor.pem(tmp_path / "anchor.pem"),
            "signer": Signer.create(anchor)}


@pytest.fixture
def tim(settings: Any, list_server: ListServer, pki: dict[str, Any]) -> ListServer:
    """A ti-m-pro server whose federation list comes from `list_server`."""
    configure(settings, compliance_profile="ti-m-pro", federation={"ti_messenger_list": {
        "url": list_server.url, "trust_anchors": (str(pki["anchor_pem"]),)}})
    return list_server


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    timlist.forget()
    timlist_refresh._tried.clear()
    yield
    timlist.forget()
    timlist_refresh._tried.clear()


def held() -> TiMessengerFederationList:
    return TiMessengerFederationList.objects.get(pk=1)


def actions_since(seq: int) -> list[int]:
    return [r.action for r in audit_since(seq)]


# --- fetching and verifying -----------------------------------------------------------------

@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256"])
def test_valid_list_is_accepted_and_decides(tim, pki, alg):
    signer = Signer.create(pki["anchor"], alg)
    tim.serve(signer.sign(federation_list(7, LISTED, "kk.tim.example", insurance=("kk.tim.example",))))
    seq = audit_head()
    assert timlist_refresh.refresh().result == "updated"
    row = held()
    assert (row.version, len(row.entries), row.signature_alg) == (7, 2, alg)
    assert "Test TI root CA" in row.signature_result and row.consecutive_failures == 0
    assert tim.versions_asked() == [""]  # nothing held yet: no version parameter
    (rec,) = audit_since(seq)
    assert rec.action == AuditAction.TIM_FEDERATION_LIST_UPDATED
    assert rec.details_dict["version"] == 7 and rec.details_dict["domains"] == 2
    assert decide(LISTED) is None and decide(f"{LISTED}:8448") is None
    assert timlist.entry_for("kk.tim.example")["isInsurance"] is True


def _rejected(tim, body: bytes, error_part: str) -> None:
    seq = audit_head()
    before = held().version
    tim.serve(body)
    out = timlist_refresh.refresh()
    assert out.result == "failed" and error_part in out.error, out.error
    row = held()
    assert row.version == before  # the current list is kept
    assert error_part in row.last_error
    assert actions_since(seq) == [AuditAction.TIM_FEDERATION_LIST_REJECTED]


@pytest.fixture
def holding_v3(tim, pki) -> ListServer:
    tim.serve(pki["signer"].sign(federation_list(3, LISTED)))
    assert timlist_refresh.refresh().result == "updated"
    return tim


def test_tampered_signature_is_rejected_and_current_list_kept(holding_v3, pki):
    token = pki["signer"].sign(federation_list(4, LISTED, "evil.example")).decode()
    header, _, sig = token.split(".")
    forged = b64url(json.dumps(federation_list(4, LISTED, "evil.example", "more.example"))
                    .encode())
    _rejected(holding_v3, f"{header}.{forged}.{sig}".encode(), "signature does not verify")
    assert decide(LISTED) is None  # still federating on version 3
    assert decide("evil.example") == "federation.ti_messenger_list"


def test_chain_not_to_the_anchor_is_rejected(holding_v3, pki):
    rogue = Signer.create(pki["rogue"])
    _rejected(holding_v3, rogue.sign(federation_list(4, LISTED, "evil.example")),
              "does not chain to a trust anchor")


def test_leaf_swapped_for_anchor_signed_cert_of_another_key_is_rejected(holding_v3, pki):
    """A valid chain, but the signature was made with a different key than the leaf's."""
    impostor = Signer.create(pki["rogue"])
    impostor.chain = pki["signer"].chain
    _rejected(holding_v3, impostor.sign(federation_list(4, "evil.example")),
              "signature does not verify")


@pytest.mark.parametrize("header", [{"alg": "none"}, {"alg": "HS256"},
                                    {"alg": "ES256"},  # no x5c
                                    {"alg": "ES256", "x5c": ["not base64!"]},
                                    {"alg": "ES256", "crit": ["exp"], "x5c": []}])
def test_bad_headers_are_rejected(holding_v3, pki, header):
    _rejected(holding_v3, pki["signer"].sign(federation_list(4, LISTED), header=header),
              "list rejected")


@pytest.mark.parametrize("payload", [
    {"version": "4", "domainList": []},
    {"version": 4},
    {"version": 4, "domainList": [{"telematikID": "x"}]},
    {"version": 4, "domainList": [{"domain": "not a domain"}]},
    {"version": 4, "domainList": [{"domain": LISTED, "isInsurance": "yes"}]},
    {"version": 4, "domainList": [{"domain": LISTED, "ik": "109500969"}]},
    {"version": 4, "hashAlgorithm": "MD5", "domainList": []},
    {"version": 4, "hashAlgorithm": "SHA-256", "domainList": [{"domain": LISTED}]},
    {"version": 2, "domainList": [{"domain": "evil.example"}]},  # older than the held v3
])
def test_payload_off_the_schema_is_rejected(holding_v3, pki, payload):
    _rejected(holding_v3, pki["signer"].sign(payload), "list rejected")


def test_not_a_jws_is_rejected(holding_v3):
    _rejected(holding_v3, b"<html>maintenance</html>", "list rejected")


def test_204_keeps_the_list_and_confirms_it(holding_v3):
    row = held()
    TiMessengerFederationList.objects.filter(pk=1).update(
        confirmed_at=row.confirmed_at - datetime.timedelta(hours=70))
    holding_v3.serve(b"", status=204)
    seq = audit_head()
    assert timlist_refresh.refresh().result == "current"
    assert holding_v3.versions_asked()[-1] == "3"  # ?version=<held>
    after = held()
    assert after.version == 3 and after.entries == row.entries
    assert after.confirmed_at > row.confirmed_at - datetime.timedelta(minutes=1)
    assert after.fetched_at == row.fetched_at
    assert actions_since(seq) == []


def test_hashed_domain_lists_are_understood(tim, pki):
    import hashlib

    digest = hashlib.sha256(LISTED.encode()).hexdigest()
    tim.serve(pki["signer"].sign({"version": 1, "hashAlgorithm": "SHA-256",
                                  "domainList": [{"domain": digest, "isInsurance": False}]}))
    assert timlist_refresh.refresh().result == "updated"
    assert decide(LISTED) is None
    TiMessengerFederationList.objects.filter(pk=1).update(last_refetch_at=timezone.now())
    assert decide("other.example") == "federation.ti_messenger_list"


# --- deciding -------------------------------------------------------------------------------

def test_stale_list_blocks_all_federation_in_and_out(holding_v3, settings):
    from asgiref.sync import async_to_sync
    from django.test import Client

    from homeserver.protocol.errors import MatrixError
    from homeserver.protocol.signing import generate_signing_key
    from homeserver.protocol.xmatrix import authorization_header
    from homeserver.services.federation import client as fed_client

    assert decide(LISTED) is None
    TiMessengerFederationList.objects.filter(pk=1).update(
        confirmed_at=timezone.now() - datetime.timedelta(hours=72, minutes=1))
    timlist.forget()
    assert decide(LISTED) == timlist.RULE_STALE
    # Local allow entries do not override it either.
    configure(settings, federation={"allow_list": (LISTED,)})
    assert decide(LISTED) == timlist.RULE_STALE
    # Inbound: 403 before the body is read, audited with the rule.
    path = "/_matrix/federation/v1/query/profile?user_id=%40a%3Alocalhost"
    auth = authorization_header("GET", path, LISTED, settings.PALISADE.server_name, None,
                                generate_signing_key())
    seq = audit_head()
    r = Client().get(path, headers={"Authorization": auth})
    assert (r.status_code, r.json()["errcode"]) == (403, "M_FORBIDDEN")
    (rec,) = audit_since(seq)
    assert rec.action == AuditAction.POLICY_DENIED
    assert rec.details_dict["rule"] == timlist.RULE_STALE and rec.actor == LISTED
    # Outbound: refused before any connection.
    with pytest.raises(MatrixError) as e:
        async_to_sync(fed_client.request)("GET", LISTED, "/_matrix/key/v2/server")
    assert e.value.status == 403 and timlist.RULE_STALE in e.value.error


def test_no_list_at_all_blocks_federation(tim):
    assert decide(LISTED) == timlist.RULE_STALE
    assert tim.requests == []  # blocking does not fetch; the beat task does


def test_unknown_domain_triggers_exactly_one_refetch(holding_v3, pki):
    assert len(holding_v3.requests) == 1
    newcomer = "newcomer.tim.example"
    holding_v3.serve(pki["signer"].sign(federation_list(4, LISTED, newcomer)))
    # Not on the held v3: one re-fetch, which brings v4, which lists it.
    assert decide(newcomer) is None
    assert len(holding_v3.requests) == 2 and holding_v3.versions_asked()[-1] == "3"
    assert held().version == 4
    # An unknown server: one re-fetch in this refresh period, however often it asks.
    stranger = "stranger.example"
    TiMessengerFederationList.objects.filter(pk=1).update(last_refetch_at=None)
    for _ in range(5):
        assert decide(stranger) == timlist.RULE_UNLISTED
    assert len(holding_v3.requests) == 3
    # Other processes share the count: forget this process's memory, still no new fetch.
    timlist_refresh._tried.clear()
    assert decide(stranger) == timlist.RULE_UNLISTED
    assert len(holding_v3.requests) == 3
    # Many invented names: the rate limit allows no further re-fetch for a while.
    for i in range(20):
        assert decide(f"invented{i}.example") == timlist.RULE_UNLISTED
    assert len(holding_v3.requests) == 3


def test_three_failures_raise_exactly_one_incident(holding_v3, caplog):
    holding_v3.serve(b"oops", status=500)
    seq = audit_head()
    for _ in range(2):
        assert timlist_refresh.refresh().result == "failed"
    assert actions_since(seq) == [] and held().incident_at is None
    with caplog.at_level("ERROR", logger="palisade.compliance.timlist"):
        assert timlist_refresh.refresh().result == "failed"
    assert actions_since(seq) == [AuditAction.TIM_FEDERATION_LIST_INCIDENT]
    assert any("INCIDENT" in r.message for r in caplog.records if r.levelname == "ERROR")
    (rec,) = audit_since(seq)
    assert rec.details_dict["consecutive_failures"] == 3
    assert "HTTP 500" in rec.details_dict["last_error"]
    assert timlist_refresh.refresh().result == "failed"  # a 4th: no second incident
    assert actions_since(seq) == [AuditAction.TIM_FEDERATION_LIST_INCIDENT]
    assert held().consecutive_failures == 4
    assert held().version == 3  # the list held is kept through the outage


def test_unreachable_list_server_counts_as_failure(tim, settings):
    configure(settings, federation={"ti_messenger_list": {"url": "http://127.0.0.1:9/x.jws"}})
    out = timlist_refresh.refresh()
    assert out.result == "failed" and "cannot reach" in out.error


def test_schedule_hourly_after_success_every_5_minutes_after_failure(holding_v3):
    now = timezone.now()
    assert not timlist_refresh.is_due(now + datetime.timedelta(minutes=59))
    assert timlist_refresh.is_due(now + datetime.timedelta(minutes=61))
    holding_v3.serve(b"", status=503)
    timlist_refresh.refresh()
    now = timezone.now()
    assert not timlist_refresh.is_due(now + datetime.timedelta(minutes=4))
    assert timlist_refresh.is_due(now + datetime.timedelta(minutes=5, seconds=1))


def test_beat_task_fetches_when_due_only(tim, pki):
    from homeserver.celery import app
    from homeserver.tasks.timlist import refresh_timlist_task

    assert "palisade.compliance.timlist_refresh" in app.conf.beat_schedule
    tim.serve(pki["signer"].sign(federation_list(1, LISTED)))
    assert refresh_timlist_task.apply().get() == "updated"
    assert refresh_timlist_task.apply().get() == "not due"
    assert len(tim.requests) == 1


def test_inactive_without_configuration(settings, list_server):
    configure(settings, compliance_profile="ti-m-pro")  # no url: the list is not in use
    assert not timlist.is_active()
    assert decide("anyone.example") is None
    configure(settings, compliance_profile="standard", federation={"ti_messenger_list": {
        "url": list_server.url}})
    assert not timlist.is_active()  # standard profile: only with enabled = true


def test_deploy_check_refuses_tim_profile_without_the_list(settings, tmp_path):
    from compliance.checks import ti_messenger_list_configured

    configure(settings, compliance_profile="ti-m-pro")
    (err,) = ti_messenger_list_configured()
    assert err.id == "palisade.compliance.E001"
    configure(settings, federation={"ti_messenger_list": {
        "url": "https://vzd.example/federationList.jws", "trust_anchors": ("a.pem",)}})
    assert ti_messenger_list_configured() == []
    configure(settings, compliance_profile="standard",
              federation={"ti_messenger_list": {"url": "", "trust_anchors": ()}})
    assert ti_messenger_list_configured() == []
