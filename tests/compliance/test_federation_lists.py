"""Admin-managed federation allow/deny entries: who may manage them, that every change is
audited, that bad input changes nothing, and that the entries decide who federates with us, in
both directions (REQUIREMENTS.md A_25534, AF_10064, "list source")."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from audit.actions import AuditAction
from audit.roles import AUDITOR, COMPLIANCE_OFFICER, HOMESERVER_ADMIN
from compliance import federation_lists
from compliance.federation_access import decide
from compliance.federation_patterns import matches, normalise_pattern
from compliance.models import FederationListEntry
from tests.accounts.conftest import audit_head, audit_since, configure

pytestmark = pytest.mark.django_db
URL = "/admin/compliance/federationlistentry/"
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fresh_cache():
    federation_lists.forget()
    yield
    federation_lists.forget()


def member(name: str, group: str) -> Client:
    user = User.objects.create_user(name, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    assert client.login(username=name, password=PASSWORD)
    return client


def add_entry(client: Client, **fields: str):
    return client.post(URL + "add/", {"kind": "deny", "note": "", **fields})


# --- patterns -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "canonical"), [
    ("Hospital.Example", "hospital.example"),
    (" matrix.example:8448 ", "matrix.example:8448"),
    ("*.kv.example", "*.kv.example"),
    ("[::1]:8448", "[::1]:8448"),
    ("10.0.0.1", "10.0.0.1"),
])
def test_valid_patterns_are_normalised(text, canonical):
    assert normalise_pattern(text) == canonical


@pytest.mark.parametrize("text", ["", "   ", "*.kv.example:8448", "a.*.example", "*",
                                  "bad host.example", "x.example:99999", "*.[::1]",
                                  "hospital.example/path"])
def test_invalid_patterns_are_refused(text):
    with pytest.raises(ValueError):
        normalise_pattern(text)


def test_matching_rules():
    assert matches("hospital.example:8448", ["hospital.example"])  # no port: any port
    assert matches("HOSPITAL.example", ["hospital.example"])
    assert not matches("hospital.example:8448", ["hospital.example:443"])
    assert matches("a.b.kv.example", ["*.kv.example"]) and matches("kv.example", ["*.kv.example"])
    assert not matches("evilkv.example", ["*.kv.example"])
    assert matches("[::1]:8448", ["[::1]"])


# --- the decision ---------------------------------------------------------------------------

def entry(kind: str, server: str) -> FederationListEntry:
    return FederationListEntry.objects.create(kind=kind, server=server, added_by="test")


def test_deny_entry_refuses_under_open_federation(settings):
    assert decide("spam.example") is None
    entry("deny", "*.spam.example")
    federation_lists.forget()
    assert decide("mx.spam.example:8448") == "federation.deny_list"
    assert decide("friend.example") is None  # open federation otherwise


def test_allow_entries_extend_a_configured_allow_list_only(settings):
    entry("allow", "partner.example")
    federation_lists.forget()
    # Open federation: an allow entry does not shut everybody else out.
    assert decide("anyone.example") is None
    configure(settings, federation={"allow_list": ()})
    assert decide("partner.example:8448") is None
    assert decide("anyone.example") == "federation.allow_list"
    configure(settings, federation={"allow_list": ("config.example",)})
    assert decide("config.example") is None and decide("partner.example") is None


def test_deny_entry_wins_over_allow_entries_and_config(settings):
    configure(settings, federation={"allow_list": ("partner.example",)})
    entry("allow", "partner.example")
    entry("deny", "partner.example")
    federation_lists.forget()
    assert decide("partner.example") == "federation.deny_list"


def test_changes_reach_a_process_within_the_check_interval(monkeypatch):
    """Another process's change (here: a row written behind the cache's back) is seen once the
    check interval has passed, with no restart and no explicit invalidation."""
    monkeypatch.setattr(federation_lists, "CHECK_SECONDS", 0.3)
    assert decide("late.example") is None  # loads the (empty) lists
    e = entry("deny", "late.example")
    assert decide("late.example") is None  # still the cached copy
    deadline = time.monotonic() + 10
    while decide("late.example") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert decide("late.example") == "federation.deny_list"
    # Deleting it is seen the same way (the row count changes).
    e.delete()
    while decide("late.example") is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)


# --- the admin ------------------------------------------------------------------------------

def test_compliance_officer_adds_changes_and_deletes_entries_all_audited():
    client = member("officer", COMPLIANCE_OFFICER)
    seq = audit_head()
    r = add_entry(client, server="Spam.Example", note="ticket 42")
    assert r.status_code == 302, r.content.decode()[:2000]
    row = FederationListEntry.objects.get()
    assert (row.kind, row.server, row.added_by) == ("deny", "spam.example", "officer")
    r = client.post(f"{URL}{row.pk}/change/", {"kind": "allow", "server": "spam.example",
                                                "note": "ticket 43"})
    assert r.status_code == 302
    r = client.post(f"{URL}{row.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not FederationListEntry.objects.exists()
    records = [r for r in audit_since(seq) if r.action in (
        AuditAction.ADMIN_OBJECT_ADDED, AuditAction.ADMIN_OBJECT_CHANGED,
        AuditAction.ADMIN_OBJECT_DELETED)]
    assert [r.action for r in records] == [AuditAction.ADMIN_OBJECT_ADDED,
                                          AuditAction.ADMIN_OBJECT_CHANGED,
                                          AuditAction.ADMIN_OBJECT_DELETED]
    assert all(r.actor == "officer" for r in records)
    assert all(r.target == f"compliance.federationlistentry:{row.pk}" for r in records)
    added, changed, deleted = (r.details_dict for r in records)
    assert added["after"]["server"] == "spam.example" and added["after"]["kind"] == "deny"
    assert changed["changes"]["kind"] == ["deny", "allow"]
    assert deleted["before"]["note"] == "ticket 43"


@pytest.mark.parametrize("server", ["not a server", "*.x.example:80", ""])
def test_bad_entry_is_refused_and_leaves_nothing(server):
    client = member("officer", COMPLIANCE_OFFICER)
    seq = audit_head()
    r = add_entry(client, server=server)
    assert r.status_code == 200  # the form again, with the error
    assert "errornote" in r.content.decode() or "errorlist" in r.content.decode()
    assert not FederationListEntry.objects.exists()
    assert [r.action for r in audit_since(seq)] == []


def test_duplicate_entry_is_refused():
    client = member("officer", COMPLIANCE_OFFICER)
    assert add_entry(client, server="dup.example").status_code == 302
    seq = audit_head()
    r = add_entry(client, server="DUP.example")
    assert r.status_code == 200
    assert FederationListEntry.objects.count() == 1
    assert audit_since(seq) == []


def test_homeserver_admin_reads_but_cannot_change():
    entry("deny", "spam.example")
    client = member("hsadmin", HOMESERVER_ADMIN)
    page = client.get(URL)
    assert page.status_code == 200 and "spam.example" in page.content.decode()
    assert "Open federation" in page.content.decode()
    assert client.get(URL + "add/").status_code == 403
    assert add_entry(client, server="x.example").status_code == 403
    pk = FederationListEntry.objects.get().pk
    assert client.post(f"{URL}{pk}/delete/", {"post": "yes"}).status_code == 403
    assert FederationListEntry.objects.count() == 1


def test_auditor_cannot_see_the_entries():
    assert member("aud", AUDITOR).get(URL).status_code == 403


def test_admin_added_deny_entry_refuses_an_outbound_request(settings):
    """Outbound (A_25534): a destination an officer denied is never contacted."""
    from asgiref.sync import async_to_sync

    from homeserver.protocol.errors import MatrixError
    from homeserver.services.federation import client as fed_client

    client = member("officer", COMPLIANCE_OFFICER)
    assert add_entry(client, server="blocked.example").status_code == 302
    federation_lists.forget()
    with pytest.raises(MatrixError) as e:
        async_to_sync(fed_client.request)("GET", "blocked.example", "/_matrix/key/v2/server")
    assert (e.value.status, e.value.errcode) == (403, "M_FORBIDDEN")
    assert "federation.deny_list" in e.value.error
