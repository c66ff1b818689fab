"""Send-to-device inboxes (models.e2ee.ToDeviceMessage).

Spec: client-server API "Send-to-Device messaging", server behaviour: messages are kept until
the device acknowledges them by syncing with the `next_batch` of the response that carried
them. Each delivery stamps the messages with that response's position (`delivered_in`); a
/sync whose `since` has reached the stamp deletes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.models import ToDeviceMessage
from homeserver.storage.e2ee_keys import dump, load


@dataclass(frozen=True)
class ToDevice:
    sender: str
    type: str
    content: dict[str, Any]


def add_messages(sender: str, event_type: str, stream_ordering: int,
                 messages: Iterable[tuple[str, str, dict[str, Any]]]) -> int:
    """Queue (user_id, device_id, content) messages; returns how many."""
    rows = [
        ToDeviceMessage(user_id=u, device_id=d, sender=sender, type=event_type,
                        content_json=dump(c), stream_ordering=stream_ordering)
        for u, d, c in messages
    ]
    ToDeviceMessage.objects.bulk_create(rows)
    return len(rows)


def has_messages(user_id: str, device_id: str) -> bool:
    return ToDeviceMessage.objects.filter(user_id=user_id, device_id=device_id).exists()


def acknowledge(user_id: str, device_id: str, since: int) -> int:
    """Delete what was delivered in a response at or before position `since`."""
    deleted, _ = ToDeviceMessage.objects.filter(
        user_id=user_id, device_id=device_id, delivered_in__lte=since
    ).delete()
    return deleted


def take_pending(user_id: str, device_id: str, upto: int, limit: int) -> list[ToDevice]:
    """The oldest `limit` pending messages written at or before `upto`, stamped as delivered in
    the response at position `upto`."""
    rows = list(
        ToDeviceMessage.objects.filter(
            user_id=user_id, device_id=device_id, stream_ordering__lte=upto
        )
        .order_by("stream_ordering", "id")
        .values_list("id", "sender", "type", "content_json")[:limit]
    )
    if not rows:
        return []
    ToDeviceMessage.objects.filter(id__in=[r[0] for r in rows]).update(delivered_in=upto)
    return [ToDevice(sender, t, load(c)) for _, sender, t, c in rows]


def delete_inboxes(user_id: str, device_ids: list[str]) -> None:
    ToDeviceMessage.objects.filter(user_id=user_id, device_id__in=device_ids).delete()
