"""manage.py create_user."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from audit.actions import ActorType, AuditAction
from homeserver.models import Account
from homeserver.services.accounts.passwords import password_matches
from tests.accounts.conftest import PASSWORD, audit_head, audit_since, server_name

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_user_with_password():
    out = io.StringIO()
    head = audit_head()
    call_command("create_user", "carol", "--password", PASSWORD, stdout=out)
    user_id = f"@carol:{server_name()}"
    assert f"created user {user_id}" in out.getvalue()
    account = Account.objects.get(user_id=user_id)
    assert not account.is_admin
    assert password_matches(PASSWORD, account.password_hash)
    records = audit_since(head)
    assert [r.action for r in records] == [AuditAction.USER_CREATED]
    assert records[0].actor_type == ActorType.SYSTEM


def test_create_admin_from_password_file(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    call_command("create_user", "dave", "--password-file", str(pw), "--admin",
                 stdout=io.StringIO())
    account = Account.objects.get(user_id=f"@dave:{server_name()}")
    assert account.is_admin
    assert password_matches(PASSWORD, account.password_hash)


def test_errors():
    call_command("create_user", "erin", "--password", PASSWORD, stdout=io.StringIO())
    with pytest.raises(CommandError, match="M_USER_IN_USE"):
        call_command("create_user", "erin", "--password", PASSWORD, stdout=io.StringIO())
    with pytest.raises(CommandError, match="M_INVALID_USERNAME"):
        call_command("create_user", "Erin Smith", "--password", PASSWORD)
    with pytest.raises(CommandError, match="M_WEAK_PASSWORD"):
        call_command("create_user", "frank", "--password", "short")
    assert Account.objects.count() == 1
