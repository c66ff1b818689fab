"""TI-M message rules: no threads, reactions only with one emoji, no redaction of old events
(REQUIREMENTS.md: A_25395-02, A_26228-01, A_26344 (forbidden features), A_28358 (24 h window)).

Spec: client-server API "Threading" (`m.relates_to.rel_type == "m.thread"`), "Event
annotations and reactions" (`m.reaction` with an `m.annotation` relation whose `key` is the
reaction) and "Redactions". Relations stay cleartext in `m.room.encrypted` content (spec
"Relationships": "m.relates_to" is not encrypted), so threads are refused encrypted or not;
an encrypted reaction's key cannot be seen and is left alone.
"""

from __future__ import annotations

import time
from typing import Any

from compliance.hooks import ALLOW, Decision, Deny, Hook
from compliance.policies import state as room_state
from compliance.profiles import ProfileSettings

HOUR_MS = 3600 * 1000


def policies(s: ProfileSettings) -> list[tuple[Hook, Any]]:
    out: list[tuple[Hook, Any]] = []
    if s.forbid_threads or s.single_emoji_reactions_only:
        out += [(Hook.CLIENT_SEND, client_send), (Hook.FEDERATION_PDU, federation_pdu)]
    if s.redaction_window_hours is not None:
        out.append((Hook.CLIENT_SEND, redaction_window))
    return out


def is_single_emoji(key: Any) -> bool:
    """One emoji (a single grapheme: modifiers, ZWJ sequences, flags and keycaps included)."""
    import emoji  # its tables cost ~5 MiB: loaded on the first reaction checked, not at start

    return isinstance(key, str) and emoji.is_emoji(key)


def check_content(event_type: str, content: Any, s: ProfileSettings) -> Decision:
    relates = content.get("m.relates_to") if isinstance(content, dict) else None
    relates = relates if isinstance(relates, dict) else {}
    if s.forbid_threads and relates.get("rel_type") == "m.thread":
        return Deny("message_rules.thread", "This server does not allow threads")
    if s.single_emoji_reactions_only and event_type == "m.reaction" \
            and not is_single_emoji(relates.get("key")):
        return Deny("message_rules.reaction_key",
                    "This server allows reactions with a single emoji only")
    return ALLOW


def client_send(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    ev = ctx["value"]
    return check_content(ev["type"], ev["content"], s)


def federation_pdu(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    pdu = ctx["value"]
    return check_content(pdu.get("type", ""), pdu.get("content"), s)


def redaction_window(ctx: dict[str, Any], s: ProfileSettings) -> Decision:
    """A_28358: an event older than the window (by its origin_server_ts) cannot be redacted."""
    ev = ctx["value"]
    if ev["type"] != "m.room.redaction" or ev["state_key"] is not None:
        return ALLOW
    content = ev["content"] if isinstance(ev["content"], dict) else {}
    target = room_state.stored_event(ctx.get("redacts") or content.get("redacts"))
    if target is None or target.room_id != ctx["room_id"]:
        return ALLOW  # nothing to protect; the service answers for unknown events
    age_ms = int(time.time() * 1000) - target.origin_server_ts
    if age_ms > (s.redaction_window_hours or 0) * HOUR_MS:
        return Deny("message_rules.redaction_window",
                    f"Events older than {s.redaction_window_hours} hours cannot be redacted")
    return ALLOW
