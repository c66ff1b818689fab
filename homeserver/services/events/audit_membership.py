"""The audit record every membership change gets (never content beyond the membership)."""

from __future__ import annotations

from audit.actions import ActorType, AuditAction
from audit.log import record
from homeserver.protocol.events import Event


def audit_membership_change(event: Event) -> None:
    record(
        AuditAction.MEMBERSHIP_CHANGED,
        actor=event.sender,
        actor_type=ActorType.USER,
        target=event.room_id,
        details={
            "user_id": event.state_key,
            "membership": event.content.get("membership"),
            "event_id": event.event_id,
        },
    )
