"""Audit tables with hand-written DDL and the triggers that make them append-only.

PostgreSQL: BEFORE UPDATE/DELETE row triggers and a BEFORE TRUNCATE statement trigger refuse
every change; grants for the application role are in `manage.py audit grants` (docs/audit.md).
SQLite: BEFORE UPDATE/DELETE triggers (SQLite has no TRUNCATE).
"""

from django.db import migrations, models

TABLES = ("audit_record", "audit_checkpoint", "audit_key")

COLUMNS = {
    "audit_record": """
        seq {bigpk},
        ts {ts} NOT NULL,
        actor varchar(255) NOT NULL,
        actor_type varchar(16) NOT NULL,
        action integer NOT NULL,
        target varchar(255) NOT NULL,
        details text NOT NULL,
        request_id varchar(128) NOT NULL,
        source_addr varchar(64) NOT NULL,
        prev_hash varchar(64) NOT NULL,
        hash varchar(64) NOT NULL""",
    "audit_checkpoint": """
        seq {bigpk},
        head_hash varchar(64) NOT NULL,
        ts {ts} NOT NULL,
        server_name varchar(255) NOT NULL,
        key_id varchar(64) NOT NULL,
        signature varchar(128) NOT NULL""",
    "audit_key": """
        key_id varchar(64) NOT NULL PRIMARY KEY,
        public_key varchar(64) NOT NULL,
        created {ts} NOT NULL""",
}
INDEXES = ("ts", "actor", "action", "target")

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit tables are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def postgres_sql() -> list[str]:
    types = {"bigpk": "bigint NOT NULL PRIMARY KEY CHECK (seq > 0)", "ts": "timestamptz"}
    sql = [f"CREATE TABLE {t} ({cols.format(**types)})" for t, cols in COLUMNS.items()]
    sql += [f"CREATE INDEX audit_record_{c} ON audit_record ({c})" for c in INDEXES]
    sql.append(PG_FUNCTION)
    for t in TABLES:
        sql.append(f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                   "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()")
        sql.append(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()")
    return sql


def sqlite_sql() -> list[str]:
    types = {"bigpk": "integer NOT NULL PRIMARY KEY CHECK (seq > 0)", "ts": "datetime"}
    sql = [f"CREATE TABLE {t} ({cols.format(**types)})" for t, cols in COLUMNS.items()]
    sql += [f"CREATE INDEX audit_record_{c} ON audit_record ({c})" for c in INDEXES]
    for t in TABLES:
        for op in ("UPDATE", "DELETE"):
            sql.append(f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} BEGIN "
                       f"SELECT RAISE(ABORT, 'audit tables are append-only: {op} on {t} "
                       "refused'); END")
    return sql


def create_tables(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = postgres_sql()
    elif vendor == "sqlite":
        statements = sqlite_sql()
    else:
        raise RuntimeError(f"the audit tables support PostgreSQL and SQLite, not {vendor}")
    for statement in statements:
        schema_editor.execute(statement, params=None)


def refuse_drop(apps, schema_editor):
    raise RuntimeError("the audit tables are never dropped by a migration")


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.RunPython(create_tables, refuse_drop),
        migrations.CreateModel(
            name="AuditRecord",
            fields=[
                ("seq", models.BigIntegerField(primary_key=True, serialize=False, verbose_name="sequence")),
                ("ts", models.DateTimeField(verbose_name="time")),
                ("actor", models.CharField(max_length=255)),
                ("actor_type", models.CharField(max_length=16, verbose_name="actor type")),
                ("action", models.IntegerField()),
                ("target", models.CharField(max_length=255)),
                ("details", models.TextField()),
                ("request_id", models.CharField(max_length=128, verbose_name="request id")),
                ("source_addr", models.CharField(max_length=64, verbose_name="source address")),
                ("prev_hash", models.CharField(max_length=64, verbose_name="previous hash")),
                ("hash", models.CharField(max_length=64)),
            ],
            options={
                "verbose_name": "audit record",
                "db_table": "audit_record",
                "ordering": ["-seq"],
                "permissions": [
                    ("export_auditrecord", "Can export signed audit bundles"),
                    ("verify_auditrecord", "Can see the chain status and run a verification"),
                ],
                "managed": False,
                "default_permissions": ("view",),
            },
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("seq", models.BigIntegerField(primary_key=True, serialize=False, verbose_name="sequence")),
                ("head_hash", models.CharField(max_length=64, verbose_name="head hash")),
                ("ts", models.DateTimeField(verbose_name="time")),
                ("server_name", models.CharField(max_length=255)),
                ("key_id", models.CharField(max_length=64, verbose_name="key id")),
                ("signature", models.CharField(max_length=128)),
            ],
            options={
                "verbose_name": "signed checkpoint",
                "db_table": "audit_checkpoint",
                "ordering": ["-seq"],
                "managed": False,
                "default_permissions": ("view",),
            },
        ),
        migrations.CreateModel(
            name="AuditKey",
            fields=[
                ("key_id", models.CharField(max_length=64, primary_key=True, serialize=False, verbose_name="key id")),
                ("public_key", models.CharField(max_length=64, verbose_name="public key")),
                ("created", models.DateTimeField()),
            ],
            options={
                "verbose_name": "audit signing key",
                "db_table": "audit_key",
                "managed": False,
                "default_permissions": ("view",),
            },
        ),
        migrations.CreateModel(
            name="PolicyDecision",
            fields=[],
            options={
                "verbose_name": "policy decision",
                "proxy": True,
                "default_permissions": ("view",),
                "indexes": [],
                "constraints": [],
            },
            bases=("audit.auditrecord",),
        ),
    ]
