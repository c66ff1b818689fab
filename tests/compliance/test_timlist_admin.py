"""The TI-Messenger federation list status page for compliance officers (REQUIREMENTS.md "What
compliance officers and auditors need to see": version, age against the 72 h limit, signature
result, last fetch, incidents, blocked or not), in the Django test client and in a real browser."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from audit.roles import AUDITOR, COMPLIANCE_OFFICER, HOMESERVER_ADMIN
from compliance import timlist
from compliance.models import TiMessengerFederationList
from compliance.timlist import refresh as timlist_refresh
from tests.compliance import test_timlist as timlist_tests
from tests.compliance.test_timlist import LISTED, federation_list

# The list server, test PKI and TI-M configuration fixtures of test_timlist.py.
list_server, pki, tim = timlist_tests.list_server, timlist_tests.pki, timlist_tests.tim
fresh_state = timlist_tests.fresh_state

pytestmark = pytest.mark.django_db
URL = "/admin/compliance/timessengerfederationlist/"
PASSWORD = "correct horse battery staple"


def member(name: str, group: str) -> Client:
    user = User.objects.create_user(name, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    assert client.login(username=name, password=PASSWORD)
    return client


def test_status_of_a_current_list(tim, pki):
    tim.serve(pki["signer"].sign(federation_list(12, LISTED, "b.tim.example")))
    timlist_refresh.refresh()
    client = member("officer", COMPLIANCE_OFFICER)
    assert URL in client.get("/admin/").content.decode()
    html = client.get(URL).content.decode()
    assert 'id="timlist-version">v12<' in html
    assert "Open to listed servers" in html
    assert "ES256 verified" in html and "Test TI root CA" in html
    assert "0.0 h of 72" in html
    assert 'id="timlist-failures">0<' in html


def test_status_shows_blocked_errors_and_incident(tim, pki):
    tim.serve(pki["signer"].sign(federation_list(5, LISTED)))
    timlist_refresh.refresh()
    TiMessengerFederationList.objects.filter(pk=1).update(
        confirmed_at=timezone.now() - datetime.timedelta(hours=80))
    tim.serve(b"", status=502)
    for _ in range(3):
        timlist_refresh.refresh()
    timlist.forget()
    html = member("officer", COMPLIANCE_OFFICER).get(URL).content.decode()
    assert "Blocked: no current list" in html
    assert "80.0 h of 72" in html and "(100%)" in html
    assert "HTTP 502" in html
    assert 'id="timlist-failures">3<' in html and "(open)" in html


def test_not_in_use_without_configuration():
    html = member("officer", COMPLIANCE_OFFICER).get(URL).content.decode()
    assert "List not in use" in html


def test_read_only_and_roles(tim):
    officer = member("officer", COMPLIANCE_OFFICER)
    assert officer.post(URL, {}).status_code == 405
    assert officer.get(URL + "add/").status_code == 404
    assert member("hsadmin", HOMESERVER_ADMIN).get(URL).status_code == 200
    assert member("auditor", AUDITOR).get(URL).status_code == 403


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_officer_reads_the_status_in_a_browser(tim, pki, live_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from tests.audit.test_browser import ARGS, CHROMIUM

    tim.serve(pki["signer"].sign(federation_list(3, LISTED)))
    timlist_refresh.refresh()
    User.objects.create_user("officer", password=PASSWORD, is_staff=True).groups.add(
        Group.objects.get(name=COMPLIANCE_OFFICER))
    shots = Path(os.environ.get("PALISADE_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.goto(f"{live_server.url}/admin/login/")
            page.fill("#id_username", "officer")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.get_by_role("link", name="TI-Messenger federation list").click()
            expect(page.locator("#timlist-state")).to_contain_text("Open to listed servers")
            expect(page.locator("#timlist-version")).to_have_text("v3")
            page.screenshot(path=str(shots / "timlist-status.png"), full_page=True)
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
