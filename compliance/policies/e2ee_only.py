"""E2EE-only: rooms are created encrypted, content travels only as `m.room.encrypted`, and
nobody removes or weakens a room's encryption (REQUIREMENTS.md "E2EE-only", A_25324-01,
BwMessenger).

Spec: client-server API "End-to-end encryption" — "m.room.encryption": once a room is
encrypted, clients encrypt every message-like event with the room's algorithm (Megolm) as an
`m.room.encrypted` event; state events stay cleartext. The server cannot check ciphertext, so
the rule is on event types: a non-state event whose type is not `m.room.encrypted` or on the
profile's cleartext allow-list is plaintext content and refused.

One check (`check_event`) serves the local client path (`client_send`) and the federation path
(`federation_pdu`): a remote server cannot push plaintext into a room on an E2EE-only server.
"""

from __future__ import annotations

from typing import Any

from compliance.hooks import ALLOW, Decision, Deny, Hook, Rewrite
from compliance.policies import state as room_state
from compliance.profiles import MEGOLM, ProfileSettings

ENCRYPTION = "m.room.encryption"
ENCRYPTED = "m.room.encrypted"
# Message-like types that must never be stored in cleartext, not even disguised as state.
MESSAGE_TYPES = ("m.room.message", "m.sticker")
MESSAGE_PREFIXES = ("m.poll.", "org.matrix.msc3381.poll.", "m.call.")

ONLY_ENCRYPTED = "This server only allows end-to-end encrypted rooms"


def policies(s: ProfileSettings) -> list[tuple[Hook, Any]]:
    if not s.e2ee_only:
        return []
    return [
        (Hook.ROOM_CREATE, room_create),
        (Hook.CLIENT_SEND, client_send),
        (Hook.FEDERATION_PDU, federation_pdu),
        (Hook.JOIN_REMOTE_ROOM, join_remote_room),
    ]


def is_message_like(event_type: str) -> bool:
    return event_type in MESSAGE_TYPES or event_type.startswith(MESSAGE_PREFIXES)


def room_create(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    """createRoom: initial_state must carry Megolm m.room.encryption; without it the request is
    refused or the event is added (`missing_encryption`). A weaker one is always refused."""
    request = ctx["value"]
    state = room_state.requested_state(request)
    if state is None:
        return ALLOW
    wanted = state.get((ENCRYPTION, ""))
    if wanted is not None:
        if wanted.get("algorithm") != MEGOLM:
            return Deny("e2ee_only.weak_encryption",
                        f"{ONLY_ENCRYPTED}: m.room.encryption must use {MEGOLM}")
        return ALLOW
    if s.missing_encryption == "add":
        added = room_state.with_initial_state(request, [(ENCRYPTION, {"algorithm": MEGOLM})])
        return Rewrite("e2ee_only.add_encryption", added)
    return Deny("e2ee_only.unencrypted_room",
                f"{ONLY_ENCRYPTED}: add m.room.encryption ({MEGOLM}) to initial_state")


def check_event(
    room_id: str,
    event_type: str,
    state_key: str | None,
    content: Any,
    redacts: Any,
    s: ProfileSettings,
) -> Decision:
    """The E2EE-only verdict on one event about to enter `room_id`, wherever it comes from."""
    if event_type == ENCRYPTION and state_key is not None:
        return _encryption_change(room_id, state_key, content)
    if state_key is not None:
        if is_message_like(event_type):
            return Deny("e2ee_only.plaintext_state",
                        f"{ONLY_ENCRYPTED}: {event_type} cannot be sent as a state event")
        return ALLOW
    if event_type == "m.room.redaction":
        target = redacts or (content.get("redacts") if isinstance(content, dict) else None)
        if target and target == room_state.current_state_event_id(room_id, ENCRYPTION):
            # Redaction strips m.room.encryption's content: the room would lose its algorithm.
            return Deny("e2ee_only.encryption_redaction",
                        f"{ONLY_ENCRYPTED}: the room's encryption cannot be redacted")
    if event_type != ENCRYPTED and event_type not in s.cleartext_allowlist:
        return Deny("e2ee_only.plaintext",
                    f"{ONLY_ENCRYPTED}: {event_type} must be sent encrypted (m.room.encrypted)")
    return ALLOW


def _encryption_change(room_id: str, state_key: str, content: Any) -> Decision:
    if not isinstance(content, dict) or content.get("algorithm") != MEGOLM:
        return Deny("e2ee_only.weak_encryption",
                    f"{ONLY_ENCRYPTED}: m.room.encryption must use {MEGOLM}")
    current = room_state.current_state_content(room_id, ENCRYPTION, state_key)
    if current is not None and current != content:
        return Deny("e2ee_only.encryption_change",
                    f"{ONLY_ENCRYPTED}: the room's encryption settings cannot be changed")
    return ALLOW


def client_send(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    """Every event a local client sends (hook value: {"type", "state_key", "content"})."""
    ev = ctx["value"]
    return check_event(ctx["room_id"], ev["type"], ev["state_key"], ev["content"],
                       ctx.get("redacts"), s)


def federation_pdu(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    """A PDU from another server, after its signatures were checked (hook value: the PDU)."""
    pdu = ctx["value"]
    return check_event(ctx["room_id"], pdu.get("type", ""), pdu.get("state_key"),
                       pdu.get("content"), pdu.get("redacts"), s)


def join_remote_room(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    """Joining a room on another server (hook value: its state as a list of events — the
    send_join `state` or the invite's stripped state): only Megolm-encrypted rooms. A caller
    without the state may name the verdict in the context's `encrypted` (Megolm or not)."""
    if ctx.get("value") is None and "encrypted" in ctx:
        ok = ctx["encrypted"] is True
    else:
        wanted = room_state.state_list_content(ctx.get("value") or [], ENCRYPTION)
        ok = wanted is not None and wanted.get("algorithm") == MEGOLM
    if not ok:
        return Deny("e2ee_only.unencrypted_remote_room",
                    f"{ONLY_ENCRYPTED}: the remote room is not encrypted")
    return ALLOW
