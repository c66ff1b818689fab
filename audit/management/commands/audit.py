"""`manage.py audit verify|checkpoint|export|keys|grants|roles` (see docs/audit.md)."""

from __future__ import annotations

import getpass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from audit.actions import ActorType, AuditAction, AuditCategory
from audit.chain_verify import default_workers, verify_chain
from audit.checkpoints import audit_signing_key, config_path, read_sink
from audit.log import checkpoint_now, record_system
from audit.roles import grants_sql, sync_role_groups
from audit.verify_bundle import parse_key
from homeserver.protocol.signing import public_key_base64


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise CommandError(f"{text}: give a time zone, e.g. 2025-01-31T00:00:00+00:00")
    return value


class Command(BaseCommand):
    help = "Verify, checkpoint and export the audit chain; print keys, grants and roles."
    # Verification must not depend on the rest of the project passing its system checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="sub", required=True)
        v = sub.add_parser("verify", help="walk the chain and checkpoints; exit 1 on a break")
        v.add_argument("--trusted-key", action="append", type=parse_key, default=[],
                       metavar="KEY_ID=BASE64", help="also trust this (retired) key")
        v.add_argument("--checkpoints", type=Path, action="append", default=[],
                       help="checkpoints held elsewhere (JSON lines), e.g. an auditor's copy")
        v.add_argument("--no-sink", action="store_true",
                       help="do not read the configured sink file")
        v.add_argument("--no-record", action="store_true",
                       help="do not append an AUDIT_VERIFIED record")
        v.add_argument("--workers", type=int, default=default_workers(),
                       help="processes walking a long chain in ranges (default: one per core)")
        sub.add_parser("checkpoint", help="sign a checkpoint of the head now (cron / timer)")
        e = sub.add_parser("export", help="write a signed export bundle")
        e.add_argument("--out", type=Path, required=True, help="a .zip path or a folder")
        e.add_argument("--since", type=_when)
        e.add_argument("--until", type=_when)
        e.add_argument("--actor", default="")
        e.add_argument("--target", default="")
        e.add_argument("--category", action="append", default=[],
                       choices=[c.value for c in AuditCategory])
        sub.add_parser("keys", help="print the audit public key for auditors to pin")
        g = sub.add_parser("grants", help="print the PostgreSQL grants for the app role")
        g.add_argument("role")
        sub.add_parser("roles", help="create/update the Homeserver admin, Compliance officer "
                                     "and Auditor groups")

    def handle(self, *args: object, **opts: object) -> None:
        getattr(self, f"_{opts['sub']}")(**opts)

    def _verify(self, **opts: object) -> None:
        held = []
        sink = settings.PALISADE.audit.sink_path
        paths = list(opts["checkpoints"])  # type: ignore[call-overload]
        if sink and not opts["no_sink"] and config_path(sink).exists():
            paths.append(config_path(sink))
        for path in paths:
            held.extend(read_sink(path))
        result = verify_chain(extra_keys=dict(opts["trusted_key"]),  # type: ignore[call-overload]
                              held_checkpoints=held,
                              workers=opts["workers"])  # type: ignore[arg-type]
        if held:
            result.notes.append(f"{len(held)} externally held checkpoints checked")
        if not opts["no_record"]:
            with transaction.atomic():
                record_system(AuditAction.AUDIT_VERIFIED, details=result.as_details())
        self.stdout.write(result.summary())
        for note in result.notes:
            self.stdout.write(note)
        if not result.ok:
            raise CommandError("the audit chain is broken", returncode=1)

    def _checkpoint(self, **opts: object) -> None:
        with transaction.atomic():
            seq, head = checkpoint_now()
        self.stdout.write(f"checkpoint at seq {seq}, head {head}")

    def _export(self, **opts: object) -> None:
        from audit.export import ExportFilter, export_bundle

        filters = ExportFilter(
            since=opts["since"], until=opts["until"], actor=opts["actor"],  # type: ignore[arg-type]
            target=opts["target"],  # type: ignore[arg-type]
            categories=tuple(AuditCategory(c) for c in opts["category"]),  # type: ignore[attr-defined]
        )
        try:
            bundle = export_bundle(filters, actor=f"shell:{getpass.getuser()}",
                                   actor_type=ActorType.ADMIN)
        except ValueError as e:
            raise CommandError(str(e)) from None
        out: Path = opts["out"]  # type: ignore[assignment]
        if out.suffix == ".zip":
            out.write_bytes(bundle.zip_bytes())
        else:
            bundle.write_dir(out)
        self.stdout.write(f"wrote {out}: {bundle.manifest['record_count']} records, segment "
                          f"{bundle.manifest['segment']['first']}..{bundle.manifest['segment']['last']}")

    def _keys(self, **opts: object) -> None:
        key = audit_signing_key()
        self.stdout.write(f"{key.key_id}={public_key_base64(key)}")

    def _grants(self, **opts: object) -> None:
        self.stdout.write(grants_sql(str(opts["role"])))

    def _roles(self, **opts: object) -> None:
        for name, count in sync_role_groups().items():
            self.stdout.write(f"{name}: {count} permissions")
