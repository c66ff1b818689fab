"""The database itself refuses to change audit rows; on PostgreSQL the app role may only
INSERT and SELECT there (the documented grants, applied to a role the test creates)."""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from audit.actions import AuditAction
from audit.log import record
from audit.roles import grants_sql
from tests.audit.conftest import append, head_seq, is_postgres

pytestmark = pytest.mark.django_db
# SQLite has no TRUNCATE, roles or grants; its triggers are tested above.
only_postgres = pytest.mark.skipif(not is_postgres(), reason="PostgreSQL only")


def run_sql(sql: str, params: list | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:  # savepoint: the test goes on
        cursor.execute(sql, params)


@pytest.mark.parametrize("sql", [
    "UPDATE audit_record SET actor = 'mallory' WHERE seq = %s",
    "UPDATE audit_record SET hash = prev_hash WHERE seq = %s",
    "DELETE FROM audit_record WHERE seq = %s",
    "DELETE FROM audit_record WHERE seq >= %s",
    "UPDATE audit_checkpoint SET head_hash = 'x' WHERE seq <= %s",
    "DELETE FROM audit_checkpoint WHERE seq <= %s",
    "DELETE FROM audit_key WHERE created IS NOT NULL OR %s = 0",
])
def test_direct_sql_update_and_delete_fail(sql: str) -> None:
    [seq] = append(1)
    with pytest.raises(DatabaseError, match="append-only"):
        run_sql(sql, [seq])
    assert head_seq() == seq


@only_postgres
def test_truncate_fails_on_postgresql() -> None:
    append(1)
    for table in ("audit_record", "audit_checkpoint", "audit_key"):
        with pytest.raises(DatabaseError, match="append-only"):
            run_sql(f"TRUNCATE {table}")


@only_postgres
def test_app_role_may_only_insert_and_select() -> None:
    [seq] = append(1)
    role = f"palisade_app_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:  # all inside the test's transaction: rolled back after
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        for statement in grants_sql(role).splitlines():
            cursor.execute(statement)
        cursor.execute(f"SET ROLE {role}")
        try:
            cursor.execute("SELECT count(*) FROM audit_record WHERE seq <= %s", [seq])
            assert cursor.fetchone()[0] >= 1
            with transaction.atomic():
                appended = record(AuditAction.LOGOUT, actor="@app-role:example.org")
            assert appended.seq == seq + 1
            for sql in ("UPDATE audit_record SET actor = 'x' WHERE seq = %s",
                        "DELETE FROM audit_record WHERE seq = %s",
                        "UPDATE audit_checkpoint SET key_id = 'x' WHERE seq = %s",
                        "TRUNCATE audit_record", "TRUNCATE audit_checkpoint",
                        "DROP TRIGGER audit_record_append_only ON audit_record"):
                with pytest.raises(DatabaseError, match=r"permission denied|must be owner"):
                    run_sql(sql, [seq] if "%s" in sql else None)
        finally:
            cursor.execute("RESET ROLE")


def test_grants_sql_refuses_odd_role_names() -> None:
    with pytest.raises(ValueError):
        grants_sql("app; DROP TABLE audit_record")
