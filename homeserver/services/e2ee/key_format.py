"""Shape and signature checks of the key objects clients upload. Pure: no database.

Spec: client-server API "Key algorithms" (ed25519 / curve25519 keys are 32 bytes in unpadded
Base64; signed_curve25519 is a KeyObject signed by the device), "Device keys" (signed by the
device's own ed25519 key), the CrossSigningKey definition (exactly one `ed25519:<public key>`
entry) and appendices "Signing JSON" / "Checking for a Signature".

Errors: a wrong JSON type is 400 M_BAD_JSON, a wrong value 400 M_INVALID_PARAM, a signature
that does not verify 400 M_INVALID_SIGNATURE (the errcode the cross-signing API defines).
"""

from __future__ import annotations

from typing import Any

from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.signing import SignatureError, verify_signed_json
from homeserver.protocol.unpadded_base64 import decode_base64

INVALID_SIGNATURE = "M_INVALID_SIGNATURE"
MAX_NAME_LENGTH = 255
MAX_ALGORITHM_LENGTH = 128


def bad_json(message: str) -> MatrixError:
    return MatrixError(400, Errcode.BAD_JSON, message)


def invalid(message: str) -> MatrixError:
    return MatrixError(400, Errcode.INVALID_PARAM, message)


def is_key_32(text: Any) -> bool:
    """An unpadded-Base64 32-byte public key (ed25519 or curve25519)."""
    if not isinstance(text, str) or len(text) > 64:
        return False
    try:
        return len(decode_base64(text)) == 32
    except ValueError:
        return False


def signature_valid(obj: dict[str, Any], user_id: str, key_id: str, public_key: str) -> bool:
    try:
        verify_signed_json(obj, user_id, key_id, decode_base64(public_key))
    except (SignatureError, ValueError):
        return False
    return True


def check_signatures_shape(signatures: Any, what: str) -> dict[str, dict[str, str]]:
    if not isinstance(signatures, dict) or not all(
        isinstance(v, dict) and all(isinstance(s, str) for s in v.values())
        for v in signatures.values()
    ):
        raise bad_json(f"{what}.signatures must map user IDs to key IDs to signatures")
    return signatures


def split_key_name(name: str, what: str) -> tuple[str, str]:
    """`<algorithm>:<key id>` -> (algorithm, key id)."""
    algorithm, sep, key_id = name.partition(":")
    if (not sep or not algorithm or not key_id or len(name) > MAX_NAME_LENGTH
            or len(algorithm) > MAX_ALGORITHM_LENGTH):
        raise invalid(f"{what} key name {name!r} is not <algorithm>:<key_id>")
    return algorithm, key_id


def check_device_keys(obj: Any, user_id: str, device_id: str) -> tuple[str, dict[str, Any]]:
    """Validate uploaded device keys: (the device's ed25519 key, the object to store)."""
    if not isinstance(obj, dict):
        raise bad_json("device_keys must be an object")
    # Spec: DeviceKeys: user_id and device_id must match the ones used when logging in.
    if obj.get("user_id") != user_id:
        raise invalid("device_keys.user_id does not match the logged-in user")
    if obj.get("device_id") != device_id:
        raise invalid("device_keys.device_id does not match the logged-in device")
    algorithms = obj.get("algorithms")
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise bad_json("device_keys.algorithms must be a list of strings")
    keys = obj.get("keys")
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise bad_json("device_keys.keys must map key IDs to keys")
    for name in keys:
        algorithm, key_device = split_key_name(name, "device_keys.keys")
        if key_device != device_id:
            raise invalid(f"device_keys.keys: {name!r} is not a key of device {device_id!r}")
        if algorithm in ("ed25519", "curve25519") and not is_key_32(keys[name]):
            raise invalid(f"device_keys.keys: {name!r} is not a 32-byte unpadded Base64 key")
    ed25519 = keys.get(f"ed25519:{device_id}")
    if ed25519 is None:
        raise invalid("device_keys.keys must include the device's ed25519 key")
    check_signatures_shape(obj.get("signatures"), "device_keys")
    # Spec: "Uploading keys": the object must be signed by the device's own Ed25519 key.
    if not signature_valid(obj, user_id, f"ed25519:{device_id}", ed25519):
        raise MatrixError(400, INVALID_SIGNATURE,
                          "device_keys is not signed by the device's ed25519 key")
    stored = {k: v for k, v in obj.items() if k != "unsigned"}
    return ed25519, stored


def check_key_object(name: Any, value: Any, user_id: str, device_id: str,
                     ed25519: str | None, what: str) -> tuple[str, str, Any]:
    """One entry of one_time_keys / fallback_keys: (algorithm, key id, key)."""
    if not isinstance(name, str):
        raise bad_json(f"{what} key names must be strings")
    algorithm, key_id = split_key_name(name, what)
    if isinstance(value, str):
        # Spec: OneTimeKeys: a plain string key is allowed for unsigned algorithms only.
        if algorithm.startswith("signed_"):
            raise invalid(f"{what}: {name!r} must be a signed key object")
        if algorithm == "curve25519" and not is_key_32(value):
            raise invalid(f"{what}: {name!r} is not a 32-byte unpadded Base64 key")
        return algorithm, key_id, value
    if not isinstance(value, dict) or not isinstance(value.get("key"), str):
        raise bad_json(f"{what}: {name!r} must be a string or an object with a string 'key'")
    if algorithm == "signed_curve25519" and not is_key_32(value["key"]):
        raise invalid(f"{what}: {name!r} is not a 32-byte unpadded Base64 key")
    check_signatures_shape(value.get("signatures"), f"{what}.{name}")
    if ed25519 is None:
        raise invalid(f"{what}: upload the device's keys before signed one-time keys")
    # Spec: "One-time and fallback keys": signed_curve25519 keys are signed by the device.
    if not signature_valid(value, user_id, f"ed25519:{device_id}", ed25519):
        raise MatrixError(400, INVALID_SIGNATURE,
                          f"{what}: {name!r} is not signed by the device's ed25519 key")
    return algorithm, key_id, value


def check_cross_signing_key(obj: Any, user_id: str, usage: str, what: str,
                            ) -> tuple[str, dict[str, Any]]:
    """A CrossSigningKey for `usage`: (its public key, the object)."""
    if not isinstance(obj, dict):
        raise bad_json(f"{what} must be an object")
    if obj.get("user_id") != user_id:
        raise invalid(f"{what}.user_id does not match the logged-in user")
    usages = obj.get("usage")
    if not isinstance(usages, list) or usage not in usages:
        raise invalid(f"{what}.usage must include {usage!r}")
    keys = obj.get("keys")
    # Spec: CrossSigningKey.keys: exactly one property, `<algorithm>:<public key>` -> key.
    if not isinstance(keys, dict) or len(keys) != 1:
        raise invalid(f"{what}.keys must hold exactly one key")
    (name, public_key), = keys.items()
    if name != f"ed25519:{public_key}" or not is_key_32(public_key):
        raise invalid(f"{what}.keys must be {{'ed25519:<public key>': '<public key>'}}")
    if "signatures" in obj:
        check_signatures_shape(obj["signatures"], what)
    return public_key, obj


def unsigned_part(obj: dict[str, Any]) -> dict[str, Any]:
    """What a signature covers: the object without `signatures` and `unsigned`."""
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
