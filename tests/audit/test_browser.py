"""End-to-end in a real browser (Debian's chromium driven by Playwright), one test per role.
Screenshots go to $PALISADE_SCREENSHOT_DIR when set (else the test's tmp dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from audit.actions import AuditAction
from audit.checkpoints import audit_signing_key
from audit.models import AuditRecord, PolicyDecision
from audit.roles import AUDITOR, COMPLIANCE_OFFICER, HOMESERVER_ADMIN
from audit.verify_bundle import read_bundle, verify_bundle
from tests.audit.conftest import append, head_seq

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the test makes
    # between page actions are ordinary blocking calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    path = Path(os.environ.get("PALISADE_SCREENSHOT_DIR", tmp_path))
    path.mkdir(parents=True, exist_ok=True)
    return path


def login(browser: Any, live_server: Any, name: str, group: str) -> Any:
    user = User.objects.create_user(name, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    page = browser.new_page(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", name)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def seed() -> None:
    append(3, actor="@alice:example.org", target="@alice:example.org")
    append(2, action=AuditAction.POLICY_DENIED, actor="@bob:example.org",
           target="!plain:example.org",
           details={"hook": "client_send", "policy": "e2ee_only",
                    "reason": "This server only allows encrypted rooms"})
    append(1, action=AuditAction.ROOM_CREATED, actor="@bob:example.org",
           target="!secret:example.org")


def test_auditor_browses_verifies_and_exports(browser: Any, live_server: Any,
                                              shots: Path) -> None:
    seed()
    page = login(browser, live_server, "auditor", AUDITOR)
    expect(page.get_by_role("link", name="Chain status")).to_be_visible()
    expect(page.get_by_role("link", name="Export for auditors")).to_be_visible()
    page.screenshot(path=str(shots / "auditor-index.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/audit/auditrecord/")
    page.click("#changelist-filter >> text=Policy decisions")
    page.wait_for_url("**category=policy**")
    expect(page.locator("#result_list tbody tr").first).to_be_visible()
    assert page.locator("#result_list tbody tr").count() >= 2
    page.screenshot(path=str(shots / "auditor-log-filtered.png"), full_page=True)
    page.locator("#result_list tbody tr th a").first.click()
    expect(page.get_by_text("This server only allows encrypted rooms")).to_be_visible()
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("a.deletelink").count() == 0
    page.screenshot(path=str(shots / "auditor-record.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/audit/status/")
    page.click("#verify-now")
    expect(page.locator(".pal-ok")).to_have_text("Intact")
    page.screenshot(path=str(shots / "auditor-chain-status.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/audit/export/")
    page.check("input[name=categories][value=policy]")
    page.screenshot(path=str(shots / "auditor-export.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#export-submit")
    bundle = shots / "auditor-bundle.zip"
    download.value.save_as(bundle)
    key = audit_signing_key()
    summary = verify_bundle(read_bundle(bundle), {key.key_id: key.verify_key_bytes})
    policy = PolicyDecision.objects.count()  # the seed's, and earlier tests' committed ones
    assert summary[0].startswith(f"OK: {policy} records selected")
    exported = AuditRecord.objects.get(seq=head_seq())
    assert (exported.action, exported.actor) == (AuditAction.AUDIT_EXPORTED, "auditor")
    page.close()


def test_compliance_officer_reads_the_decision_log_only(browser: Any, live_server: Any,
                                                         shots: Path) -> None:
    seed()
    page = login(browser, live_server, "officer", COMPLIANCE_OFFICER)
    expect(page.get_by_role("link", name="Policy decisions").first).to_be_visible()
    expect(page.get_by_role("link", name="Audit records")).to_have_count(0)
    page.goto(f"{live_server.url}/admin/audit/policydecision/")
    expect(page.get_by_text("This server only allows encrypted rooms").first).to_be_visible()
    expect(page.locator("td .pal-denied").first).to_be_visible()
    assert page.locator("td .pal-denied").count() >= 2
    page.screenshot(path=str(shots / "officer-decisions.png"), full_page=True)
    for path in ("/admin/audit/auditrecord/", "/admin/audit/export/", "/admin/audit/status/"):
        assert page.goto(f"{live_server.url}{path}").status == 403, path
    page.close()


def test_homeserver_admin_changes_a_user_and_it_is_audited(browser: Any, live_server: Any,
                                                            shots: Path) -> None:
    page = login(browser, live_server, "ops", HOMESERVER_ADMIN)
    start = head_seq()
    page.goto(f"{live_server.url}/admin/auth/user/add/")
    page.fill("#id_username", "frank")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("input[name=_continue]")
    page.wait_for_url("**/change/**")
    expect(page.locator("input[name=is_superuser]")).to_have_count(0)  # cannot escalate
    page.fill("#id_first_name", "Frank")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    page.screenshot(path=str(shots / "homeserver-admin-user.png"), full_page=True)
    frank = User.objects.get(username="frank")
    records = AuditRecord.objects.filter(seq__gt=start, target=f"auth.user:{frank.pk}")
    by_action = {r.action: r.details_dict for r in records}
    assert by_action[AuditAction.ADMIN_OBJECT_ADDED]["after"]["username"] == "frank"
    assert by_action[AuditAction.ADMIN_OBJECT_CHANGED]["changes"]["first_name"] == ["", "Frank"]
    assert page.goto(f"{live_server.url}/admin/audit/auditrecord/").status == 403
    page.close()
