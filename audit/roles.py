"""The three roles as Django groups, and the database grants of the application role.

- Homeserver admin: users and rooms (the homeserver app's models, staff-user accounts without
  the power to grant groups, permissions or superuser status); reads the federation lists.
- Compliance officer: policies and federation lists (the compliance app) and the policy
  decision log; not the full audit log, its chain status or exports.
- Auditor: read-only audit views, chain status and exports; changes nothing.
Audit records are read-only for everyone, superusers included (audit/admin.py).
The groups are brought up to date after every migrate (additively: permissions an operator
added by hand are kept) and by `manage.py audit roles`.
"""

from __future__ import annotations

import re

from django.contrib.auth.models import Group, Permission

HOMESERVER_ADMIN = "Homeserver admin"
COMPLIANCE_OFFICER = "Compliance officer"
AUDITOR = "Auditor"

# "app_label.codename", or "app_label.*" for every permission of that app.
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    HOMESERVER_ADMIN: ("homeserver.*", "auth.view_user", "auth.add_user", "auth.change_user",
                       "auth.view_group", "compliance.view_federationlistentry",
                       "compliance.view_timessengerfederationlist"),
    COMPLIANCE_OFFICER: ("compliance.*", "audit.view_policydecision"),
    AUDITOR: ("audit.view_auditrecord", "audit.view_policydecision",
              "audit.view_auditcheckpoint", "audit.view_auditkey",
              "audit.export_auditrecord", "audit.verify_auditrecord"),
}

AUDIT_TABLES = ("audit_record", "audit_checkpoint", "audit_key")
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _permissions(spec: str, using: str) -> list[Permission]:
    app_label, codename = spec.split(".", 1)
    qs = Permission.objects.using(using).filter(content_type__app_label=app_label)
    return list(qs if codename == "*" else qs.filter(codename=codename))


def sync_role_groups(using: str = "default") -> dict[str, int]:
    """Create the role groups and add their permissions; returns group -> permission count."""
    counts = {}
    for name, specs in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        perms = [p for spec in specs for p in _permissions(spec, using)]
        group.permissions.add(*perms)
        counts[name] = group.permissions.count()
    return counts


def on_post_migrate(sender: object, using: str = "default", **kwargs: object) -> None:
    sync_role_groups(using)


def grants_sql(role: str) -> str:
    """SQL that limits the application role to INSERT and SELECT on the audit tables.

    Run it as the owner of the tables (the role that ran `migrate`); the application role must
    not own them, since an owner can drop triggers and re-grant itself anything."""
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError(f"{role!r} is not a plain lower-case PostgreSQL role name")
    tables = ", ".join(AUDIT_TABLES)
    return "\n".join([
        f"REVOKE ALL ON {tables} FROM PUBLIC;",
        f"REVOKE ALL ON {tables} FROM {role};",
        f"GRANT SELECT, INSERT ON {tables} TO {role};",
    ])
