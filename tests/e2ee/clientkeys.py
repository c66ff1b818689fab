"""What a client device holds: real ed25519 / curve25519 key pairs, and signing done the way the
spec describes it (canonical JSON without `signatures` and `unsigned`), independently of the
server's own signing code."""

from __future__ import annotations

import base64
import copy
from typing import Any

import canonicaljson
import nacl.public
import nacl.signing

from tests.accounts.conftest import Api


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def sign(obj: dict[str, Any], user_id: str, key_id: str,
         key: nacl.signing.SigningKey) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    message = canonicaljson.encode_canonical_json(
        {k: v for k, v in out.items() if k not in ("signatures", "unsigned")})
    out.setdefault("signatures", {}).setdefault(user_id, {})[key_id] = b64(
        key.sign(message).signature)
    return out


class SigningKeyPair:
    def __init__(self) -> None:
        self.private = nacl.signing.SigningKey.generate()
        self.public = b64(bytes(self.private.verify_key))

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.public}"


class ClientDevice:
    """One logged-in device with its identity keys."""

    def __init__(self, user_id: str, device_id: str, token: str) -> None:
        self.user_id, self.device_id, self.token = user_id, device_id, token
        self.ed25519 = nacl.signing.SigningKey.generate()
        self.curve25519 = nacl.public.PrivateKey.generate()
        self.n = 0

    @property
    def ed25519_public(self) -> str:
        return b64(bytes(self.ed25519.verify_key))

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.device_id}"

    def device_keys(self, **overrides: Any) -> dict[str, Any]:
        obj = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {
                f"curve25519:{self.device_id}": b64(bytes(self.curve25519.public_key)),
                f"ed25519:{self.device_id}": self.ed25519_public,
            },
        }
        obj.update(overrides)
        return self.sign(obj)

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        return sign(obj, self.user_id, self.key_id, self.ed25519)

    def one_time_keys(self, n: int, *, fallback: bool = False) -> dict[str, Any]:
        out = {}
        for _ in range(n):
            self.n += 1
            key = {"key": b64(bytes(nacl.public.PrivateKey.generate().public_key))}
            if fallback:
                key["fallback"] = True
            out[f"signed_curve25519:AAAA{self.n:04d}"] = self.sign(key)
        return out


async def login_device(api: Api, user_id: str, device_id: str | None = None) -> ClientDevice:
    fields = {"device_id": device_id} if device_id else {}
    resp = await api.login(user_id, **fields)
    return ClientDevice(user_id, resp["device_id"], resp["access_token"])


async def upload(api: Api, dev: ClientDevice, body: dict[str, Any], status: int = 200) -> dict:
    r = await api.call("POST", "/keys/upload", body, token=dev.token)
    assert r.status_code == status, r.json()
    return r.json()


async def sync(api: Api, dev: ClientDevice, since: str | None = None, timeout: int = 0) -> dict:
    q = f"?timeout={timeout}" + (f"&since={since}" if since else "")
    r = await api.call("GET", "/sync" + q, token=dev.token)
    assert r.status_code == 200, r.json()
    return r.json()


async def shared_room(api: Api, creator: ClientDevice, *others: ClientDevice) -> str:
    """An encrypted room `creator` made and every other device's user joined."""
    r = await api.call("POST", "/createRoom", {
        "invite": sorted({o.user_id for o in others}),
        "initial_state": [{"type": "m.room.encryption", "state_key": "",
                           "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
    }, token=creator.token)
    assert r.status_code == 200, r.json()
    room_id = r.json()["room_id"]
    joined = set()
    for o in others:
        if o.user_id in joined:
            continue
        joined.add(o.user_id)
        r = await api.call("POST", f"/rooms/{room_id}/join", {}, token=o.token)
        assert r.status_code == 200, r.json()
    return room_id
