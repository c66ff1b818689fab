"""The effective-policy page of the admin: Compliance officers (and superusers) see the running
profile and its settings, read-only; other roles do not."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from audit.roles import AUDITOR, COMPLIANCE_OFFICER, HOMESERVER_ADMIN

pytestmark = pytest.mark.django_db
URL = "/admin/compliance/effectivepolicy/"
PASSWORD = "correct horse battery staple"


def member(name: str, group: str | None = None, superuser: bool = False) -> Client:
    user = User.objects.create_user(name, password=PASSWORD, is_staff=True,
                                    is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    assert client.login(username=name, password=PASSWORD)
    return client


def test_compliance_officer_sees_the_active_profile(use_profile):
    use_profile("ti-m-epa", redaction_window_hours=48)
    client = member("officer", COMPLIANCE_OFFICER)
    index = client.get("/admin/").content.decode()
    assert URL in index
    page = client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<strong id="active-profile">ti-m-epa</strong>' in html
    assert "redaction_window_hours" in html and "48" in html  # the override is shown
    assert "A_25368-01" in html and "knock_restricted" in html
    assert "client_send: e2ee_only.client_send" in html
    assert "<form" not in html.split('id="content-main"')[1]  # nothing to submit


def test_page_is_read_only(use_profile):
    use_profile("strict")
    client = member("officer2", COMPLIANCE_OFFICER)
    assert client.get(URL + "add/").status_code == 404
    assert client.get(URL + "1/change/").status_code == 404
    assert client.post(URL, {"e2ee_only": "false"}).status_code == 405


@pytest.mark.parametrize("group", [AUDITOR, HOMESERVER_ADMIN])
def test_other_roles_do_not_see_it(group):
    client = member(f"user-{group.split()[0].lower()}", group)
    assert client.get(URL).status_code == 403
    assert URL not in client.get("/admin/").content.decode()


def test_superuser_sees_it_and_anonymous_is_sent_to_login():
    assert member("root", superuser=True).get(URL).status_code == 200
    r = Client().get(URL)
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
