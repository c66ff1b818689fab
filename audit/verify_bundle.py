#!/usr/bin/env python3
"""Check a Palisade audit export bundle offline. Needs Python 3.11+ and PyNaCl, nothing else.

    python3 verify_bundle.py palisade-audit-export.zip --trusted-key ed25519:abc=BASE64KEY
    python3 verify_bundle.py bundle-dir/ --checkpoints held-checkpoints.jsonl

Exit status 0 and a line starting `OK` when every check passes; 1 and `FAILED: <why>` otherwise.

This file is also the reference definition of the chain format: the server imports the record
hash and canonical JSON from here, so the verifier an auditor runs and the code that writes the
chain cannot drift apart. See docs/audit.md for the bundle layout and the auditor's procedure.

Record hash: SHA-256 over the canonical JSON (Matrix canonical JSON: UTF-8, keys sorted, no
insignificant whitespace) of {action, actor, actor_type, details, prev_hash, request_id, seq,
source_addr, target, ts}, where ts is microseconds since the Unix epoch and prev_hash is the
previous record's hash (64 zeros for the first record). Checkpoints and the manifest are
Matrix-style signed JSON: an ed25519 signature over the canonical JSON of the object without
its `signatures`, under signatures[server_name][key_id], in unpadded Base64.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

FORMAT = "palisade-audit-bundle/1"
GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "action", "actor", "actor_type", "details", "prev_hash",
    "request_id", "seq", "source_addr", "target", "ts",
)
_INT_FIELDS = frozenset({"action", "seq", "ts"})
MANIFEST = "manifest.json"
CHAIN = "chain.jsonl"
RECORDS = "records.jsonl"
RECORDS_CSV = "records.csv"
CHECKPOINTS = "checkpoints.jsonl"
KEYS = "keys.json"
_escape = json.encoder.encode_basestring  # the escaping json.dumps(ensure_ascii=False) uses


class BundleError(Exception):
    """The bundle fails a check; the message says which and where."""


# --- the chain format ------------------------------------------------------------------------

def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    ).encode("utf-8")


def record_preimage(
    seq: int, ts: int, actor: str, actor_type: str, action: int, target: str,
    details_json: str, request_id: str, source_addr: str, prev_hash: str,
) -> bytes:
    """canonical_json of the hashed fields, with `details` given as its canonical JSON text.

    Written out by hand because it runs once per record when a million-record chain is
    verified; tests pin it byte-for-byte to canonical_json of the same record.
    """
    return (
        f'{{"action":{action:d},"actor":{_escape(actor)},"actor_type":{_escape(actor_type)},'
        f'"details":{details_json},"prev_hash":{_escape(prev_hash)},'
        f'"request_id":{_escape(request_id)},"seq":{seq:d},'
        f'"source_addr":{_escape(source_addr)},"target":{_escape(target)},"ts":{ts:d}}}'
    ).encode()


def record_hash(preimage: bytes) -> str:
    return hashlib.sha256(preimage).hexdigest()


def hash_of_record(rec: dict[str, Any]) -> str:
    """The hash of an exported record (a dict holding at least HASHED_FIELDS)."""
    return record_hash(record_preimage(
        rec["seq"], rec["ts"], rec["actor"], rec["actor_type"], rec["action"], rec["target"],
        canonical_json(rec["details"]).decode("utf-8"), rec["request_id"],
        rec["source_addr"], rec["prev_hash"],
    ))


def unpadded_b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def signed_payload(obj: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in obj.items() if k not in ("signatures", "unsigned")})


def check_signature(obj: dict[str, Any], keys: dict[str, bytes], what: str) -> str:
    """Verify a signed JSON object against `keys` (key id -> public key); return the key id."""
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    sigs = obj.get("signatures")
    if not isinstance(sigs, dict) or not sigs:
        raise BundleError(f"{what}: no signatures")
    payload = signed_payload(obj)
    for by_key in sigs.values():
        for key_id, sig in (by_key or {}).items():
            if key_id not in keys:
                continue
            try:
                VerifyKey(keys[key_id]).verify(payload, unpadded_b64decode(sig))
            except (BadSignatureError, ValueError, TypeError):
                raise BundleError(f"{what}: bad signature by {key_id}") from None
            return key_id
    raise BundleError(f"{what}: not signed by a trusted key (signed by "
                      f"{', '.join(k for v in sigs.values() for k in (v or {}))})")


# --- reading a bundle ------------------------------------------------------------------------

def read_bundle(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}
    try:
        with zipfile.ZipFile(path) as zf:
            files = {}
            for info in zf.infolist():
                if info.is_dir():
                    continue
                if "/" in info.filename.strip("/") or info.filename in files:
                    raise BundleError(f"unexpected member {info.filename!r} in the archive")
                files[info.filename] = zf.read(info)  # checks each member's CRC-32
            return files
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, ValueError) as e:
        raise BundleError(f"cannot read {path}: {e}") from None


def _jsonl(data: bytes, name: str) -> list[dict[str, Any]]:
    out = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{name} is not UTF-8") from None
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise BundleError(f"{name} line {number}: not JSON ({e})") from None
        if not isinstance(obj, dict):
            raise BundleError(f"{name} line {number}: not a JSON object")
        out.append(obj)
    return out


def _check_types(rec: dict[str, Any], where: str) -> None:
    for field in (*HASHED_FIELDS, "hash"):
        value = rec.get(field)
        if field == "details":
            ok = isinstance(value, dict)
        elif field in _INT_FIELDS:
            ok = type(value) is int
        else:
            ok = isinstance(value, str)
        if not ok:
            raise BundleError(f"{where}: field {field!r} is missing or has the wrong type")


# --- the checks ------------------------------------------------------------------------------

def verify_chain(chain: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Hashes and links of a contiguous chain segment; returns it keyed by seq."""
    by_seq: dict[int, dict[str, Any]] = {}
    prev: dict[str, Any] | None = None
    for rec in chain:
        _check_types(rec, f"{CHAIN} seq {rec.get('seq')}")
        seq = rec["seq"]
        if prev is not None and seq != prev["seq"] + 1:
            raise BundleError(f"{CHAIN}: seq {prev['seq'] + 1} missing (next is {seq})")
        if hash_of_record(rec) != rec["hash"]:
            raise BundleError(f"{CHAIN} seq {seq}: record content does not match its hash")
        expected_prev = prev["hash"] if prev is not None else (GENESIS_HASH if seq == 1 else None)
        if expected_prev is not None and rec["prev_hash"] != expected_prev:
            raise BundleError(f"{CHAIN} seq {seq}: not chained to the record before it")
        by_seq[seq] = rec
        prev = rec
    return by_seq


def verify_checkpoints(cps: list[dict[str, Any]], chain: dict[int, dict[str, Any]],
                       keys: dict[str, bytes], source: str, strict: bool = True) -> int:
    """Signatures, and the head hash of every checkpoint inside the segment; returns count."""
    checked = 0
    for cp in cps:
        seq = cp.get("seq")
        check_signature(cp, keys, f"{source}: checkpoint at seq {seq}")
        if seq in chain:
            if chain[seq]["hash"] != cp.get("head_hash"):
                raise BundleError(f"{source}: checkpoint at seq {seq} names head "
                                  f"{cp.get('head_hash')}, the chain has {chain[seq]['hash']}")
            checked += 1
        elif strict:
            raise BundleError(f"{source}: checkpoint at seq {seq} lies outside the chain segment")
    return checked


def _load_manifest(files: dict[str, bytes]) -> dict[str, Any]:
    if MANIFEST not in files:
        raise BundleError(f"{MANIFEST} is missing")
    try:
        manifest = json.loads(files[MANIFEST])
    except ValueError:
        raise BundleError(f"{MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or canonical_json(manifest) != files[MANIFEST]:
        raise BundleError(f"{MANIFEST} is not in canonical form (was it edited?)")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"unknown bundle format {manifest.get('format')!r}")
    return manifest


def _check_files(manifest: dict[str, Any], files: dict[str, bytes]) -> None:
    listed = manifest.get("files") or {}
    for name in files:
        if name != MANIFEST and name not in listed:
            raise BundleError(f"{name} is not listed in the manifest")
    for name, meta in listed.items():
        if name not in files:
            raise BundleError(f"{name} is listed in the manifest but missing")
        if hashlib.sha256(files[name]).hexdigest() != meta.get("sha256") \
                or len(files[name]) != meta.get("size"):
            raise BundleError(f"{name} does not match its hash in the manifest")


def verify_bundle(files: dict[str, bytes], trusted: dict[str, bytes] | None = None,
                  held_checkpoints: list[dict[str, Any]] | None = None) -> list[str]:
    """Run every check; return the summary lines (raises BundleError on the first failure)."""
    manifest = _load_manifest(files)
    notes = []
    if trusted:
        keys = trusted
    else:
        try:
            keys = {k: unpadded_b64decode(v) for k, v in json.loads(files[KEYS])["keys"].items()}
        except (KeyError, ValueError, TypeError, AttributeError):
            raise BundleError(f"{KEYS} is missing or malformed") from None
        notes.append("WARNING: trusting the keys shipped inside the bundle; pin the server's "
                     "audit key with --trusted-key for an independent check")
    key_id = check_signature(manifest, keys, MANIFEST)
    _check_files(manifest, files)

    chain = verify_chain(_jsonl(files[CHAIN], CHAIN))
    segment = manifest.get("segment") or {}
    if not chain or min(chain) != segment.get("first") or max(chain) != segment.get("last"):
        raise BundleError(f"{CHAIN} does not cover the segment the manifest names")
    cps = _jsonl(files[CHECKPOINTS], CHECKPOINTS)
    verify_checkpoints(cps, chain, keys, CHECKPOINTS)
    if not any(cp["seq"] == segment["last"] for cp in cps):
        raise BundleError(f"no signed checkpoint anchors the segment end ({segment['last']})")

    records = _jsonl(files[RECORDS], RECORDS)
    for rec in records:
        original = chain.get(rec.get("seq"))
        if original is None or any(rec.get(f) != original[f] for f in (*HASHED_FIELDS, "hash")):
            raise BundleError(f"{RECORDS} seq {rec.get('seq')}: differs from the chain")
    if len(records) != manifest.get("record_count"):
        raise BundleError(f"{RECORDS} holds {len(records)} records, the manifest says "
                          f"{manifest.get('record_count')}")
    rows = list(csv.DictReader(io.StringIO(files[RECORDS_CSV].decode("utf-8"))))
    if [(int(r["seq"]), r["hash"]) for r in rows] != [(r["seq"], r["hash"]) for r in records]:
        raise BundleError(f"{RECORDS_CSV} does not list the same records as {RECORDS}")

    if held_checkpoints:
        n = verify_checkpoints(held_checkpoints, chain, keys, "held checkpoints", strict=False)
        notes.append(f"{n} of {len(held_checkpoints)} held checkpoints fall in the segment "
                     "and match it")
    notes.insert(0, (
        f"OK: {len(records)} records selected; chain segment {segment['first']}..{segment['last']}"
        f" ({len(chain)} records) anchored by a signed checkpoint; manifest signed by {key_id}"
    ))
    return notes


def parse_key(text: str) -> tuple[str, bytes]:
    key_id, sep, b64 = text.partition("=")
    if not sep or not key_id.startswith("ed25519:"):
        raise argparse.ArgumentTypeError("expected ed25519:VERSION=BASE64")
    try:
        return key_id, unpadded_b64decode(b64)
    except ValueError:
        raise argparse.ArgumentTypeError("the key is not valid Base64") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a Palisade audit export bundle offline.")
    parser.add_argument("bundle", type=Path, help="the export: a .zip file or its unpacked folder")
    parser.add_argument("--trusted-key", action="append", type=parse_key, default=[],
                        metavar="KEY_ID=BASE64", help="the server's audit public key (repeatable)")
    parser.add_argument("--checkpoints", type=Path, metavar="FILE",
                        help="checkpoints you hold (JSON lines from the server's external sink)")
    args = parser.parse_args(argv)
    try:
        held = _jsonl(args.checkpoints.read_bytes(), str(args.checkpoints)) \
            if args.checkpoints else None
        lines = verify_bundle(read_bundle(args.bundle), dict(args.trusted_key) or None, held)
    except (BundleError, OSError) as e:
        print(f"FAILED: {e}")
        return 1
    except Exception as e:  # a malformed bundle must fail, never pass, and say so plainly
        print(f"FAILED: malformed bundle ({type(e).__name__}: {e})")
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
