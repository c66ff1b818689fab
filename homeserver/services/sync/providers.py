"""The /sync sections beyond rooms' timelines and state, one provider per feature.

A provider is `fn(request: SyncRequest, now: int, response: dict) -> bool` (True when it added
something new since request.since). It may fill top-level sections (to_device, device_lists,
presence, ...) or per-room ones (ephemeral, unread counts); to show a joined room that has only
its section's changes, it adds `rooms.empty_joined_room(now)` under response["rooms"]["join"].
Each feature appends its provider to PROVIDERS here (one line each).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SectionProvider = Callable[[Any, int, dict[str, Any]], bool]

PROVIDERS: list[str] = [
    "homeserver.services.e2ee.sync_sections.e2ee",
    "homeserver.services.ephemeral.sync_sections.provide",
]


def load_providers() -> list[SectionProvider]:
    from importlib import import_module

    out = []
    for path in PROVIDERS:
        module, _, name = path.rpartition(".")
        out.append(getattr(import_module(module), name))
    return out
