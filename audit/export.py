"""Signed export bundles for auditors.

A bundle (a zip, or the same files in a folder) holds:
  records.jsonl / records.csv   the records that match the filter
  chain.jsonl                   every record from the first match to the anchoring checkpoint,
                                so the matches can be re-hashed and re-linked offline
  checkpoints.jsonl, keys.json  the signed checkpoints in that segment and their public keys
  report.html / report.pdf      a human-readable summary per category
  manifest.json                 SHA-256 and size of every file, the filter, the segment; signed
The export checkpoints the head first (so the segment ends at a signed checkpoint), builds the
bundle, and appends AUDIT_EXPORTED with the manifest's hash, all in one transaction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.actions import ActorType, AuditAction, AuditCategory, action_label, category_of
from audit.checkpoints import audit_signing_key, sign_object
from audit.log import checkpoint_now, record
from audit.models import AuditCheckpoint, AuditKey, AuditRecord, to_micros
from audit.report import render_html, render_pdf, summarise
from audit.verify_bundle import (
    CHAIN,
    CHECKPOINTS,
    FORMAT,
    HASHED_FIELDS,
    KEYS,
    MANIFEST,
    RECORDS,
    RECORDS_CSV,
    canonical_json,
)
from homeserver.protocol.signing import public_key_base64

CSV_COLUMNS = ("seq", "time", "category", "action", "action_name", "actor_type", "actor",
               "target", "request_id", "source_addr", "details", "prev_hash", "hash")


@dataclass(frozen=True)
class ExportFilter:
    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""
    categories: tuple[AuditCategory, ...] = ()
    target: str = ""

    def queryset(self) -> QuerySet[AuditRecord]:
        qs = AuditRecord.objects.all()
        if self.since:
            qs = qs.filter(ts__gte=self.since)
        if self.until:
            qs = qs.filter(ts__lt=self.until)
        if self.actor:
            qs = qs.filter(actor=self.actor)
        if self.target:
            qs = qs.filter(target=self.target)
        if self.categories:
            in_any = Q()
            for cat in self.categories:
                low, high = cat.action_range
                in_any |= Q(action__gte=low, action__lt=high)
            qs = qs.filter(in_any)
        return qs

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "actor": self.actor or None,
            "categories": [c.value for c in self.categories],
            "target": self.target or None,
        }


@dataclass
class Bundle:
    files: dict[str, bytes] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"palisade-audit-{self.manifest['bundle_id']}"

    def zip_bytes(self) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(self.files):
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, self.files[name])
        return buf.getvalue()

    def write_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (path / name).write_bytes(data)


def exported_record(rec: AuditRecord) -> dict[str, Any]:
    """A record as exported: the hashed fields and hash, plus display-only fields."""
    return {
        "seq": rec.seq, "ts": to_micros(rec.ts), "actor": rec.actor,
        "actor_type": rec.actor_type, "action": rec.action, "target": rec.target,
        "details": json.loads(rec.details), "request_id": rec.request_id,
        "source_addr": rec.source_addr, "prev_hash": rec.prev_hash, "hash": rec.hash,
        "time": rec.ts.isoformat(), "action_name": action_label(rec.action),
        "category": category_of(rec.action).value,
    }


def _jsonl(objs: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(canonical_json(o) + b"\n" for o in objs)


def _csv(records: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        row = {**r, "details": canonical_json(r["details"]).decode("utf-8")}
        writer.writerow([row[c] for c in CSV_COLUMNS])
    return buf.getvalue().encode("utf-8")


def _keys(checkpoints: list[AuditCheckpoint]) -> dict[str, str]:
    key = audit_signing_key()
    wanted = {cp.key_id for cp in checkpoints}
    keys = dict(AuditKey.objects.filter(key_id__in=wanted).values_list("key_id", "public_key"))
    keys[key.key_id] = public_key_base64(key)
    return keys


def build_bundle(filters: ExportFilter, *, exported_by: str) -> Bundle:
    """Build and sign the bundle; the caller's transaction also records the export."""
    head_seq, head_hash = checkpoint_now()
    if head_seq == 0:
        raise ValueError("the audit log is empty: nothing to export")
    selected = [exported_record(r) for r in
                filters.queryset().filter(seq__lte=head_seq).order_by("seq").iterator(2000)]
    first = selected[0]["seq"] if selected else head_seq
    segment = AuditRecord.objects.filter(seq__gte=first, seq__lte=head_seq).order_by("seq")
    chain = [{**{f: r[f] for f in HASHED_FIELDS}, "hash": r["hash"]}
             for r in map(exported_record, segment.iterator(2000))]
    cps = list(AuditCheckpoint.objects.filter(seq__gte=first, seq__lte=head_seq).order_by("seq"))
    now = timezone.now()
    bundle_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    meta = {
        "bundle_id": bundle_id, "server_name": settings.PALISADE.server_name,
        "created": now.isoformat(), "exported_by": exported_by, "filters": filters.as_dict(),
        "record_count": len(selected), "segment": {"first": first, "last": head_seq},
        "checkpoint": {"seq": head_seq, "head_hash": head_hash},
    }
    summary = summarise(selected)
    files = {
        RECORDS: _jsonl(selected),
        RECORDS_CSV: _csv(selected),
        CHAIN: _jsonl(chain),
        CHECKPOINTS: _jsonl(cp.signed_json() for cp in cps),
        KEYS: canonical_json({"keys": _keys(cps)}),
        "report.html": render_html(meta, summary, selected).encode("utf-8"),
        "report.pdf": render_pdf(meta, summary, selected),
    }
    manifest = sign_object({
        **meta, "format": FORMAT,
        "files": {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                  for n, d in sorted(files.items())},
    })
    files[MANIFEST] = canonical_json(manifest)
    return Bundle(files, manifest)


def export_bundle(filters: ExportFilter, *, actor: str,
                  actor_type: ActorType = ActorType.USER) -> Bundle:
    """Export and audit it, atomically: no bundle leaves without its AUDIT_EXPORTED record."""
    with transaction.atomic():
        bundle = build_bundle(filters, exported_by=actor)
        record(AuditAction.AUDIT_EXPORTED, actor=actor, actor_type=actor_type,
               target=bundle.manifest["bundle_id"], details={
                   "filters": filters.as_dict(),
                   "record_count": bundle.manifest["record_count"],
                   "segment": bundle.manifest["segment"],
                   "manifest_sha256": hashlib.sha256(bundle.files[MANIFEST]).hexdigest(),
               })
    return bundle
