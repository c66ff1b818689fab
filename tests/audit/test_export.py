"""Export bundles: filtered, signed, audited, and checked offline by the standalone verifier."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.actions import ActorType, AuditAction, AuditCategory
from audit.checkpoints import audit_signing_key
from audit.export import ExportFilter, export_bundle
from audit.models import AuditRecord
from audit.verify_bundle import BundleError, read_bundle, verify_bundle
from homeserver.protocol.signing import generate_signing_key, public_key_base64
from tests.audit.conftest import append, head_seq

pytestmark = pytest.mark.django_db
VERIFIER = Path(__file__).resolve().parents[2] / "audit" / "verify_bundle.py"


def trusted() -> dict[str, bytes]:
    key = audit_signing_key()
    return {key.key_id: key.verify_key_bytes}


def key_arg() -> str:
    key = audit_signing_key()
    return f"{key.key_id}={public_key_base64(key)}"


@pytest.fixture
def seeded() -> int:
    start = head_seq()
    append(3, actor="@alice:example.org", target="!room1:example.org")
    append(2, action=AuditAction.POLICY_DENIED, actor="@bob:example.org",
           target="!room1:example.org", details={"hook": "client_send", "reason": "plaintext"})
    append(2, action=AuditAction.ROOM_CREATED, actor="@bob:example.org",
           target="!room2:example.org")
    return start


def test_genuine_bundle_verifies_offline_without_django(seeded: int, tmp_path: Path) -> None:
    before = head_seq()
    bundle = export_bundle(ExportFilter(), actor="auditor1", actor_type=ActorType.ADMIN)
    assert bundle.manifest["record_count"] == before
    lines = verify_bundle(bundle.files, trusted())
    assert lines[0].startswith(f"OK: {before} records selected")
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(bundle.zip_bytes())
    # The standalone verifier, with Django made unimportable: stdlib + PyNaCl only.
    code = ("import runpy, sys; sys.modules['django'] = None; "
            f"sys.argv = ['verify_bundle.py', {str(archive)!r}, '--trusted-key', {key_arg()!r}]; "
            f"runpy.run_path({str(VERIFIER)!r}, run_name='__main__')")
    run = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("OK:")


def test_every_export_is_itself_audited(seeded: int) -> None:
    bundle = export_bundle(ExportFilter(actor="@bob:example.org"), actor="auditor1",
                           actor_type=ActorType.ADMIN)
    rec = AuditRecord.objects.get(seq=head_seq())
    assert rec.action == AuditAction.AUDIT_EXPORTED
    assert (rec.actor, rec.target) == ("auditor1", bundle.manifest["bundle_id"])
    assert rec.details_dict["manifest_sha256"] == \
        hashlib.sha256(bundle.files["manifest.json"]).hexdigest()
    assert rec.details_dict["filters"]["actor"] == "@bob:example.org"
    assert rec.seq > bundle.manifest["segment"]["last"]  # recorded after the signed segment


@pytest.mark.parametrize("name", ["manifest.json", "records.jsonl", "records.csv",
                                  "chain.jsonl", "checkpoints.jsonl", "keys.json",
                                  "report.html", "report.pdf"])
def test_one_changed_byte_in_any_file_is_rejected(seeded: int, name: str) -> None:
    files = export_bundle(ExportFilter(), actor="auditor1").files
    for position in (0, len(files[name]) // 2, len(files[name]) - 2):
        tampered = dict(files)
        data = bytearray(files[name])
        data[position] ^= 0x01
        tampered[name] = bytes(data)
        with pytest.raises(BundleError):
            verify_bundle(tampered, trusted())


def test_one_changed_byte_in_the_zip_is_rejected_by_the_cli(seeded: int,
                                                          tmp_path: Path) -> None:
    genuine = export_bundle(ExportFilter(), actor="auditor1").zip_bytes()
    # Bytes inside the compressed members: a third, a half and two thirds into the archive.
    for position in (len(genuine) // 3, len(genuine) // 2, 2 * len(genuine) // 3):
        data = bytearray(genuine)
        data[position] ^= 0x01
        archive = tmp_path / f"tampered-{position}.zip"
        archive.write_bytes(bytes(data))
        run = subprocess.run([sys.executable, str(VERIFIER), str(archive), "--trusted-key",
                              key_arg()], capture_output=True, text=True)
        assert run.returncode == 1, run.stdout + run.stderr
        assert run.stdout.startswith("FAILED:"), run.stdout + run.stderr


def test_an_extra_file_or_a_foreign_key_is_rejected(seeded: int) -> None:
    files = export_bundle(ExportFilter(), actor="auditor1").files
    with pytest.raises(BundleError, match="not listed"):
        verify_bundle({**files, "extra.txt": b"x"}, trusted())
    other = generate_signing_key()
    with pytest.raises(BundleError, match="not signed by a trusted key"):
        verify_bundle(files, {other.key_id: other.verify_key_bytes})


def test_filters_select_records_and_the_chain_segment_proves_them(seeded: int) -> None:
    start = seeded
    bundle = export_bundle(ExportFilter(categories=(AuditCategory.POLICY,),
                                        target="!room1:example.org"), actor="auditor1")
    records = [json.loads(line) for line in bundle.files["records.jsonl"].splitlines()]
    assert [r["action"] for r in records] == [AuditAction.POLICY_DENIED] * 2
    assert all(r["seq"] > start for r in records)
    assert bundle.manifest["segment"]["first"] == records[0]["seq"]
    rows = list(csv.DictReader(io.StringIO(bundle.files["records.csv"].decode())))
    assert [int(r["seq"]) for r in rows] == [r["seq"] for r in records]
    assert rows[0]["category"] == "policy" and rows[0]["action_name"] == "Policy denied"
    assert verify_bundle(bundle.files, trusted())[0].startswith("OK: 2 records selected")

    by_actor = export_bundle(ExportFilter(actor="@alice:example.org"), actor="auditor1")
    assert by_actor.manifest["record_count"] >= 3
    future = export_bundle(ExportFilter(since=timezone.now() + timedelta(days=1)),
                           actor="auditor1")
    assert future.manifest["record_count"] == 0
    assert verify_bundle(future.files, trusted())[0].startswith("OK: 0 records selected")


def test_report_has_a_summary_per_category_in_html_and_pdf(seeded: int) -> None:
    # From the first seeded record on: audit tables are never flushed, so earlier tests on this
    # database wrote records of their own within the hour.
    first = AuditRecord.objects.get(seq=seeded + 1).ts
    files = export_bundle(ExportFilter(since=first), actor="auditor1").files
    html = files["report.html"].decode()
    for label in ("Accounts", "Rooms", "Policy decisions", "Summary per category"):
        assert label in html
    assert "Policy denied &times; 2" in html
    assert files["report.pdf"].startswith(b"%PDF-")


def test_held_checkpoints_are_checked_against_the_bundle(seeded: int, tmp_path: Path) -> None:
    bundle = export_bundle(ExportFilter(), actor="auditor1")
    held = [json.loads(line) for line in bundle.files["checkpoints.jsonl"].splitlines()]
    assert "held checkpoints" in verify_bundle(bundle.files, trusted(), held)[-1]
    forged = [{**held[-1], "head_hash": "f" * 64}]
    with pytest.raises(BundleError):
        verify_bundle(bundle.files, trusted(), forged)
    directory = tmp_path / "unpacked"
    bundle.write_dir(directory)
    assert verify_bundle(read_bundle(directory), trusted())[0].startswith("OK:")
    with zipfile.ZipFile(io.BytesIO(bundle.zip_bytes())) as zf:
        assert sorted(zf.namelist()) == sorted(bundle.files)
