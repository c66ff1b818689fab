"""Roles and the admin: who may see and do what, read-only audit records, and every admin
change audited with before/after values (add, change, delete, bulk delete, other actions,
password form), plus session logins and logouts."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory

from audit.actions import AuditAction
from audit.admin_changes import audited_action
from audit.models import AuditRecord
from audit.roles import AUDITOR, COMPLIANCE_OFFICER, HOMESERVER_ADMIN
from tests.audit.conftest import append, head_seq

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def member(name: str, group: str | None = None, superuser: bool = False) -> Client:
    user = User.objects.create_user(name, password=PASSWORD, is_staff=True,
                                    is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    assert client.login(username=name, password=PASSWORD)
    return client


def new_records(since: int, action: AuditAction | None = None) -> list[AuditRecord]:
    qs = AuditRecord.objects.filter(seq__gt=since).order_by("seq")
    return list(qs.filter(action=action) if action else qs)


def test_role_groups_exist_with_their_permissions() -> None:
    perms = {g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()}
             for g in Group.objects.filter(name__in=[AUDITOR, COMPLIANCE_OFFICER,
                                                     HOMESERVER_ADMIN])}
    assert "audit.export_auditrecord" in perms[AUDITOR]
    assert "audit.view_policydecision" in perms[COMPLIANCE_OFFICER]
    assert "audit.view_auditrecord" not in perms[COMPLIANCE_OFFICER]
    assert "auth.change_user" in perms[HOMESERVER_ADMIN]
    assert not any(p.startswith("audit.") for p in perms[HOMESERVER_ADMIN])
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_"))
                   for p in perms[AUDITOR])


def test_auditor_reads_everything_audit_and_changes_nothing() -> None:
    [seq] = append(1)
    client = member("aud", AUDITOR)
    for url in ("/admin/audit/auditrecord/", f"/admin/audit/auditrecord/{seq}/change/",
                "/admin/audit/policydecision/", "/admin/audit/auditcheckpoint/",
                "/admin/audit/status/", "/admin/audit/export/"):
        assert client.get(url).status_code == 200, url
    for url in ("/admin/audit/auditrecord/add/", f"/admin/audit/auditrecord/{seq}/delete/",
                "/admin/auth/user/add/", "/admin/auth/group/add/"):
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"actor": "x"}).status_code == 403, url
    assert client.post(f"/admin/audit/auditrecord/{seq}/change/",
                       {"actor": "mallory"}).status_code == 403
    assert AuditRecord.objects.get(seq=seq).actor == "@alice:example.org"


def test_compliance_officer_sees_decisions_but_not_what_only_auditors_may() -> None:
    append(1, action=AuditAction.POLICY_DENIED, details={"hook": "invite", "reason": "blocked"})
    client = member("officer", COMPLIANCE_OFFICER)
    page = client.get("/admin/audit/policydecision/")
    assert page.status_code == 200 and b"blocked" in page.content
    for url in ("/admin/audit/auditrecord/", "/admin/audit/status/", "/admin/audit/export/",
                "/admin/audit/auditcheckpoint/"):
        assert client.get(url).status_code == 403, url
    assert client.post("/admin/audit/export/", {}).status_code == 403


def test_homeserver_admin_manages_users_but_cannot_escalate_or_read_audit() -> None:
    client = member("ops", HOMESERVER_ADMIN)
    assert client.get("/admin/audit/auditrecord/").status_code == 403
    target = User.objects.create_user("carol", password=PASSWORD)
    page = client.get(f"/admin/auth/user/{target.pk}/change/")
    assert page.status_code == 200
    assert b'name="is_superuser"' not in page.content and b'name="groups"' not in page.content
    auditor = User.objects.create_user("auditor-x", password=PASSWORD, is_staff=True)
    auditor.groups.add(Group.objects.get(name=AUDITOR))
    root = User.objects.create_superuser("root-x", password=PASSWORD)
    for victim in (auditor, root):  # no password-reset takeover of a role holder
        reset = client.post(f"/admin/auth/user/{victim.pk}/password/",
                            {"password1": "takeover-123456", "password2": "takeover-123456"})
        assert reset.status_code == 403
        victim.refresh_from_db()
        assert victim.check_password(PASSWORD)


def test_no_one_edits_or_deletes_a_record_through_the_admin() -> None:
    [seq] = append(1)
    client = member("root", superuser=True)
    page = client.get(f"/admin/audit/auditrecord/{seq}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content and b"deletelink" not in page.content
    assert client.get(f"/admin/audit/auditrecord/{seq}/delete/").status_code == 403
    assert client.post(f"/admin/audit/auditrecord/{seq}/change/",
                       {"actor": "x"}).status_code == 403
    listing = client.post("/admin/audit/auditrecord/",
                          {"action": "delete_selected", "_selected_action": [seq]})
    assert listing.status_code in (200, 302)
    assert AuditRecord.objects.filter(seq=seq).exists()
    assert b"delete_selected" not in client.get("/admin/audit/auditrecord/").content


def test_admin_add_change_delete_are_audited_with_before_and_after() -> None:
    client = member("root", superuser=True)
    start = head_seq()
    client.post("/admin/auth/group/add/", {"name": "Night shift"})
    group = Group.objects.get(name="Night shift")
    added = new_records(start, AuditAction.ADMIN_OBJECT_ADDED)
    assert added[0].target == f"auth.group:{group.pk}"
    assert added[0].details_dict["after"]["name"] == "Night shift"
    assert added[0].actor == "root" and added[0].actor_type == "admin"

    start = head_seq()
    client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "Day shift"})
    [changed] = new_records(start, AuditAction.ADMIN_OBJECT_CHANGED)
    assert changed.details_dict["changes"] == {"name": ["Night shift", "Day shift"]}

    start = head_seq()
    client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    [deleted] = new_records(start, AuditAction.ADMIN_OBJECT_DELETED)
    assert deleted.details_dict["before"]["name"] == "Day shift"
    assert deleted.target == f"auth.group:{group.pk}"


def test_bulk_delete_records_every_object() -> None:
    client = member("root", superuser=True)
    groups = [Group.objects.create(name=f"bulk-{i}") for i in range(3)]
    start = head_seq()
    client.post("/admin/auth/group/", {"action": "delete_selected", "post": "yes",
                                        "_selected_action": [g.pk for g in groups]})
    deleted = new_records(start, AuditAction.ADMIN_OBJECT_DELETED)
    assert sorted(r.details_dict["before"]["name"] for r in deleted) == \
        ["bulk-0", "bulk-1", "bulk-2"]


def test_user_changes_and_password_form_are_audited_with_secrets_redacted() -> None:
    client = member("root", superuser=True)
    start = head_seq()
    client.post("/admin/auth/user/add/", {"username": "dave", "password1": PASSWORD,
                                           "password2": PASSWORD, "usable_password": "true"})
    dave = User.objects.get(username="dave")
    [added] = new_records(start, AuditAction.ADMIN_OBJECT_ADDED)
    assert added.details_dict["after"]["password"] == "[redacted]"
    assert dave.password not in added.details

    start = head_seq()
    client.post(f"/admin/auth/user/{dave.pk}/password/",
                {"password1": PASSWORD + "!", "password2": PASSWORD + "!"})
    [changed] = new_records(start, AuditAction.ADMIN_OBJECT_CHANGED)
    assert set(changed.details_dict["changes"]) == {"password"}
    assert "[redacted]" in changed.details


def test_other_admin_actions_are_audited_by_diffing_the_selection(rf: RequestFactory) -> None:
    root = User.objects.create_superuser("root", password=PASSWORD)
    users = [User.objects.create_user(f"u{i}") for i in range(2)]

    def deactivate(modeladmin: Any, request: Any, queryset: Any) -> None:
        queryset.update(is_active=False)  # a bulk update no signal would see

    request = rf.post("/admin/auth/user/")
    request.user = root
    start = head_seq()
    audited_action(deactivate, "deactivate")(admin.site._registry[User], request,
                                             User.objects.filter(pk__in=[u.pk for u in users]))
    changed = new_records(start, AuditAction.ADMIN_OBJECT_CHANGED)
    assert len(changed) == 2
    assert all(r.details_dict["changes"] == {"is_active": [True, False]} for r in changed)
    assert {r.details_dict["admin_action"] for r in changed} == {"deactivate"}


def test_every_registered_model_admin_is_audited() -> None:
    from audit.admin_changes import AuditedModelAdmin

    assert User in admin.site._registry and Group in admin.site._registry
    assert all(isinstance(ma, AuditedModelAdmin) for ma in admin.site._registry.values())


def test_session_login_failure_and_logout_are_audited() -> None:
    User.objects.create_user("erin", password=PASSWORD, is_staff=True)
    client = Client()
    start = head_seq()
    client.post("/admin/login/", {"username": "erin", "password": "nope"})
    client.post("/admin/login/", {"username": "erin", "password": PASSWORD})
    client.post("/admin/logout/")
    actions = [(r.action, r.actor) for r in new_records(start)]
    assert actions == [(AuditAction.LOGIN_FAILED, "erin"), (AuditAction.ADMIN_LOGIN, "erin"),
                       (AuditAction.LOGOUT, "erin")]
