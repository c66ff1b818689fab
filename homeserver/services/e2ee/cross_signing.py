"""POST /keys/device_signing/upload and /keys/signatures/upload.

Spec: client-server API "Cross-signing" and cross_signing.yaml.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.actions import AuditAction
from audit.log import record
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.services.accounts import uia
from homeserver.services.e2ee import key_format as fmt
from homeserver.services.e2ee.device_lists import mark_device_list_change
from homeserver.services.federation import edus_out
from homeserver.storage import e2ee_cross_signing as cs_store
from homeserver.storage import e2ee_keys as key_store
from homeserver.storage.e2ee_cross_signing import MASTER, SELF_SIGNING, USER_SIGNING, Signature

_BODY_FIELDS = {MASTER: "master_key", SELF_SIGNING: "self_signing_key",
                USER_SIGNING: "user_signing_key"}


def _check_upload(user_id: str, body: dict[str, Any],
                  existing: dict[str, cs_store.StoredCrossSigningKey],
                  ) -> dict[str, tuple[str, dict[str, Any]]]:
    """The uploaded keys, validated: key type -> (public key, object)."""
    uploaded = {
        key_type: fmt.check_cross_signing_key(body[name], user_id, key_type, name)
        for key_type, name in _BODY_FIELDS.items() if body.get(name) is not None
    }
    master = uploaded.get(MASTER) or (
        (existing[MASTER].public_key, existing[MASTER].key) if MASTER in existing else None
    )
    for key_type in (SELF_SIGNING, USER_SIGNING):
        if key_type not in uploaded:
            continue
        if master is None:
            raise MatrixError(400, Errcode.MISSING_PARAM, "No master signing key is available")
        # Spec: self_signing_key / user_signing_key "Must be signed by the accompanying master
        # signing key, or by the user's most recently uploaded master signing key".
        if not fmt.signature_valid(uploaded[key_type][1], user_id, f"ed25519:{master[0]}",
                                   master[0]):
            raise MatrixError(400, fmt.INVALID_SIGNATURE,
                              f"{_BODY_FIELDS[key_type]} is not signed by the master key")
    devices = key_store.devices_of([user_id]).get(user_id, {})
    for key_type, (public_key, _) in uploaded.items():
        # Spec: 403 when "the public key of one of the keys is the same as one of the user's
        # device IDs" (device IDs and cross-signing keys share the ed25519:<id> namespace).
        if public_key in devices:
            raise MatrixError(403, Errcode.FORBIDDEN,
                              f"The {_BODY_FIELDS[key_type]} public key is in use as a device ID")
    return uploaded


def do_upload_cross_signing_keys(user_id: str, body: dict[str, Any], *, operation: str) -> None:
    """Publish cross-signing keys. Spec (v1.11+): user-interactive auth is required unless the
    user has no master key yet, or the request's master key (and any other key in it) exactly
    matches what is stored, so a lost response can be retried without a challenge."""
    existing = cs_store.cross_signing_keys([user_id]).get(user_id, {})
    uploaded = _check_upload(user_id, body, existing)
    changes = {t: v for t, v in uploaded.items()
               if t not in existing or existing[t].key != v[1]}
    needs_uia = MASTER in existing and (MASTER not in uploaded or bool(changes))
    result = None
    if needs_uia:
        result = uia.authenticate(body.get("auth"), operation=operation,
                                  flows=uia.password_flows(user_id), user_id=user_id)
    with transaction.atomic():
        if result is not None:
            uia.consume(result)
        if not changes:
            return
        position = mark_device_list_change(user_id)
        for key_type, (public_key, obj) in changes.items():
            cs_store.put_cross_signing_key(user_id, key_type, public_key, obj, position)
        if MASTER in changes or SELF_SIGNING in changes:  # the user-signing key stays here
            edus_out.send_signing_key_update(user_id)
        record(AuditAction.CROSS_SIGNING_KEYS_CHANGED, actor=user_id, target=user_id, details={
            "key_ids": {t: f"ed25519:{pk}" for t, (pk, _) in sorted(changes.items())},
            "replaced": sorted(t for t in changes if t in existing),
            "user_interactive_auth": needs_uia,
        })


class _Failure(Exception):
    def __init__(self, errcode: str, error: str) -> None:
        super().__init__(error)
        self.body = {"errcode": errcode, "error": error}


def _new_signatures(signer: str, target_user: str, target_key_id: str, obj: Any,
                    stored: dict[str, Any], signing_keys: dict[str, str]) -> list[Signature]:
    """Signatures by `signer` in `obj` (a signed copy of `stored`) that are new and made by one
    of `signing_keys` (key id -> public key); each must verify."""
    if not isinstance(obj, dict) or not isinstance(obj.get("signatures"), dict):
        raise _Failure(Errcode.BAD_JSON, "Expected a signed key object")
    # Spec: /keys/signatures/upload: "The signed JSON object must match the key previously
    # uploaded or retrieved for the given key ID, with the exception of the signatures".
    if fmt.unsigned_part(obj) != fmt.unsigned_part(stored):
        raise _Failure(fmt.INVALID_SIGNATURE, "The signed object does not match the stored key")
    by_signer = obj["signatures"].get(signer)
    if not isinstance(by_signer, dict):
        raise _Failure(fmt.INVALID_SIGNATURE, f"No signatures by {signer}")
    already = (stored.get("signatures") or {}).get(signer, {})
    out = []
    for key_id, signature in by_signer.items():
        if already.get(key_id) == signature:
            continue
        public_key = signing_keys.get(key_id)
        if public_key is None or not isinstance(signature, str):
            raise _Failure(fmt.INVALID_SIGNATURE,
                           f"{key_id} is not a key {signer} may sign this key with")
        if not fmt.signature_valid(obj, signer, key_id, public_key):
            raise _Failure(fmt.INVALID_SIGNATURE, "Invalid signature")
        out.append(Signature(signer, key_id, target_user, target_key_id, signature))
    if not out:
        raise _Failure(fmt.INVALID_SIGNATURE, "No new signature to upload")
    return out


def _signatures_for(signer: str, target_user: str, key_id: str, obj: Any,
                    cross: dict[str, dict[str, cs_store.StoredCrossSigningKey]],
                    devices: dict[str, key_store.StoredDeviceKeys]) -> list[Signature]:
    """Spec: "Cross-signing": the self-signing key signs the user's own devices, devices sign
    their user's master key, the user-signing key signs other users' master keys."""
    own = cross.get(signer, {})
    if target_user == signer:
        master = own.get(MASTER)
        if master is not None and key_id == master.public_key:
            keys = {f"ed25519:{d}": dk.ed25519_key for d, dk in devices.items()}
            return _new_signatures(signer, signer, key_id, obj, master.key, keys)
        if key_id in devices:
            ssk = own.get(SELF_SIGNING)
            keys = {ssk.key_id: ssk.public_key} if ssk else {}
            return _new_signatures(signer, signer, key_id, obj, devices[key_id].keys, keys)
        raise _Failure(Errcode.NOT_FOUND, "Unknown key")
    master = cross.get(target_user, {}).get(MASTER)
    if master is None or key_id != master.public_key:
        raise _Failure(Errcode.NOT_FOUND, "Unknown key (only a master key of another user "
                       "can be signed, and only when this server knows it)")
    usk = own.get(USER_SIGNING)
    keys = {usk.key_id: usk.public_key} if usk else {}
    return _new_signatures(signer, target_user, key_id, obj, master.key, keys)


def do_upload_signatures(user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Spec: POST /keys/signatures/upload: valid signatures are stored, each failing key is
    reported in `failures` (M_INVALID_SIGNATURE for a bad signature)."""
    if not all(isinstance(v, dict) for v in body.values()):
        raise fmt.bad_json("Expected a map of user ID to key ID to signed object")
    cross = cs_store.cross_signing_keys([user_id, *body])
    devices = key_store.device_keys_for([user_id]).get(user_id, {})
    failures: dict[str, dict[str, Any]] = {}
    accepted: list[Signature] = []
    for target_user, keys in body.items():
        for key_id, obj in keys.items():
            try:
                accepted += _signatures_for(user_id, target_user, key_id, obj, cross, devices)
            except _Failure as failure:
                failures.setdefault(target_user, {})[key_id] = failure.body
    if accepted:
        with transaction.atomic():
            cs_store.add_signatures(accepted)
            # The signer's own devices must re-fetch (and so must everyone else, for signatures
            # on the signer's own keys, which are visible to all).
            mark_device_list_change(user_id)
            own = {s.target_key_id for s in accepted if s.target_user_id == user_id}
            edus_out.send_device_list_updates(user_id, sorted(own & set(devices)))
            if own - set(devices):  # a signature on the user's own master key
                edus_out.send_signing_key_update(user_id)
            record(AuditAction.KEY_SIGNATURES_UPLOADED, actor=user_id, target=user_id, details={
                "count": len(accepted),
                "signatures": [
                    {"signer_key_id": s.signer_key_id, "target_user_id": s.target_user_id,
                     "target_key_id": s.target_key_id}
                    for s in accepted[:50]
                ],
            })
    return {"failures": failures}
