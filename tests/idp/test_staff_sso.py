"""Staff SSO for the admin UI: provider groups become the roles, a staff member without a
mapped group gets nothing, and local admin passwords can be switched off."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User

from audit.actions import AuditAction
from audit.models import AuditRecord
from audit.roles import AUDITOR, HOMESERVER_ADMIN, sync_role_groups
from idp.models import StaffIdentity
from tests.idp.conftest import new_page, op_sign_in, provider_config, refused, url_of

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
ROLES = {AUDITOR: ["auditors"], HOMESERVER_ADMIN: ["hs-admins"]}


@pytest.fixture
def staff_sso(sso: Any, op: Any) -> None:
    sync_role_groups()
    sso(provider_config(op, staff_login=True, staff_roles=ROLES))


def test_auditor_signs_in_with_sso_and_gets_the_mapped_role_only(
        staff_sso: Any, browser: Any, live_server: Any) -> None:
    base = url_of(live_server)
    page = new_page(browser)
    page.goto(f"{base}/admin/login/")
    page.click("#sso-test")
    op_sign_in(page, "carol")
    page.wait_for_selector("#site-name")
    assert page.url == f"{base}/admin/"
    assert page.get_by_role("link", name="Chain status").count() == 1  # an Auditor page
    staff = StaffIdentity.objects.get(subject="248289761003").user
    assert staff.is_staff and not staff.is_superuser
    assert not staff.has_usable_password()
    assert sorted(staff.groups.values_list("name", flat=True)) == [AUDITOR]
    synced = AuditRecord.objects.filter(action=AuditAction.SSO_STAFF_ROLES_SYNCED).last()
    assert synced.details_dict["roles"] == [AUDITOR]
    assert AuditRecord.objects.filter(action=AuditAction.ADMIN_LOGIN,
                                      actor=staff.username).exists()
    page.context.close()


def test_staff_without_a_mapped_group_gets_no_admin_account(
        staff_sso: Any, browser: Any, live_server: Any) -> None:
    users = User.objects.count()
    page = new_page(browser)
    page.goto(f"{url_of(live_server)}/admin/login/")
    page.click("#sso-test")
    op_sign_in(page, "dave")
    refused(page, "no_staff_role")
    assert User.objects.count() == users
    page.context.close()


def test_local_admin_passwords_can_be_switched_off(sso: Any, op: Any, browser: Any,
                                                   live_server: Any) -> None:
    sync_role_groups()
    sso(provider_config(op, staff_login=True, staff_roles=ROLES), admin_password_login=False)
    User.objects.create_user("localadmin", password="a long local password", is_staff=True,
                             is_superuser=True)
    page = new_page(browser)
    page.goto(f"{url_of(live_server)}/admin/login/")
    assert page.locator("#password-login-disabled").count() == 1
    assert page.locator("input[type=password]").count() == 0
    assert page.locator("#sso-test").count() == 1
    page.context.close()
    # A password POSTed anyway (with a valid CSRF token) is refused.
    base = url_of(live_server)
    with httpx.Client(base_url=base) as client:
        sso(provider_config(op, staff_login=True, staff_roles=ROLES))
        client.get("/admin/login/")  # the CSRF cookie comes with the password form
        sso(provider_config(op, staff_login=True, staff_roles=ROLES),
            admin_password_login=False)
        resp = client.post("/admin/login/", data={
            "username": "localadmin", "password": "a long local password",
            "csrfmiddlewaretoken": client.cookies["csrftoken"]},
            headers={"Referer": f"{base}/admin/login/"})
        assert resp.status_code == 200  # the form again, not a redirect into the admin
        assert "disabled" in resp.text
        assert client.get("/admin/").status_code == 302  # still not signed in
    assert AuditRecord.objects.filter(action=AuditAction.LOGIN_FAILED,
                                      actor="localadmin").exists()
