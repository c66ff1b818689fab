"""The policies behind the hooks, one module per concern. Each module's `policies(settings)`
returns the (hook, function) pairs the profile's settings switch on; a function takes the hook
context (with the guarded object under "value") and the settings, and returns a decision.

Order matters (compliance.hooks.run stops at the first denial and passes rewrites on): room
rules first (they decide what a room may be), then E2EE-only, then the message rules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from compliance.hooks import Decision, Hook, Policy
from compliance.profiles import ProfileSettings

SettingsPolicy = Callable[[dict[str, Any], ProfileSettings], Decision]


def bind(fn: SettingsPolicy, settings: ProfileSettings) -> Policy:
    @functools.wraps(fn)
    def policy(context: dict[str, Any]) -> Decision:
        return fn(context, settings)

    return policy


def policies_for(settings: ProfileSettings) -> list[tuple[Hook, Policy]]:
    from compliance.policies import e2ee_only, message_rules, room_rules

    return [
        (hook, bind(fn, settings))
        for module in (room_rules, e2ee_only, message_rules)
        for hook, fn in module.policies(settings)
    ]
