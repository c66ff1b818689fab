"""Client-API helpers shared by the compliance tests."""

from __future__ import annotations

from urllib.parse import quote

from compliance.profiles import MEGOLM
from tests.accounts.conftest import amake_user

ENCRYPTION_STATE = {"type": "m.room.encryption", "state_key": "",
                    "content": {"algorithm": MEGOLM}}
CIPHERTEXT = {"algorithm": MEGOLM, "ciphertext": "AwgAEnAC", "sender_key": "k",
              "session_id": "s", "device_id": "D"}


async def session(api) -> tuple[str, str]:
    user = await amake_user()
    return user, (await api.login(user))["access_token"]


async def encrypted_room(api, tok: str, **body) -> str:
    r = await api.call("POST", "/createRoom", {"initial_state": [ENCRYPTION_STATE], **body},
                       token=tok)
    assert r.status_code == 200, r.json()
    return r.json()["room_id"]


def assert_error(r, status: int, errcode: str) -> None:
    assert (r.status_code, r.json()["errcode"]) == (status, errcode), r.json()


async def send(api, tok: str, room: str, etype: str, content: dict, txn: str):
    return await api.call("PUT", f"/rooms/{room}/send/{quote(etype)}/{txn}", content, token=tok)


async def put_state(api, tok: str, room: str, etype: str, content: dict, key: str = ""):
    return await api.call("PUT", f"/rooms/{room}/state/{quote(etype)}/{quote(key)}", content,
                          token=tok)
