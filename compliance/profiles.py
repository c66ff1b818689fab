"""Compliance profiles: named, frozen bundles of room and E2EE rules (docs/compliance.md).

An operator picks one with `compliance_profile` and may override a few settings in
`[compliance]`. `activate_profile` registers the policies the effective settings switch on
(compliance/policies/), in a fixed order, replacing those of the previously active profile
(policies registered by other code, e.g. compliance/federation_access.py, stay).

This module imports nothing from Django: homeserver/config.py reads PROFILE_NAMES to validate
the configuration before Django is set up.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

# Spec: client-server API "End-to-end encryption": the Megolm algorithm for room messages.
MEGOLM = "m.megolm.v1.aes-sha2"

# The join rules that let people in without an invite (spec: m.room.join_rules).
OPEN_JOIN_RULES = ("public", "knock", "restricted", "knock_restricted")


@dataclass(frozen=True)
class ProfileSettings:
    """Every rule a profile can switch on. The defaults are the `standard` profile: no rules."""

    # E2EE-only (Palisade, BwMessenger style): plaintext content events are refused, and so is
    # removing or weakening m.room.encryption; remote rooms must be encrypted to be joined.
    e2ee_only: bool = False
    # createRoom without m.room.encryption: "refuse" (403) or "add" the Megolm state event.
    missing_encryption: Literal["refuse", "add"] = "refuse"
    # Non-state event types that may be sent in cleartext besides m.room.encrypted.
    cleartext_allowlist: tuple[str, ...] = ()
    # A_25323-01, A_25481: createRoom defaults join_rule=invite, history_visibility=invited.
    tim_room_defaults: bool = False
    # A_25368-01: how many users one createRoom may invite (None: no limit).
    max_invites_on_create: int | None = None
    # A_26202, A_26203: room versions createRoom may create (None: all known), and the default.
    allowed_create_room_versions: tuple[str, ...] | None = None
    default_create_room_version: str | None = None
    # A_25324-01 .. A_28587: join rules refused at createRoom and on every later change ...
    forbidden_join_rules: tuple[str, ...] = ()
    # ... and those refused only as a later change (forbidden features: public join rule later).
    forbidden_join_rule_changes: tuple[str, ...] = ()
    # A_28587: history_visibility world_readable (refused everywhere, not only when federating).
    forbid_world_readable: bool = False
    # ePA: no rooms published in the room directory (createRoom visibility=public).
    forbid_public_rooms: bool = False
    # A_26515-01, A_28590: public rooms stay local (m.federate=false); remote public rooms
    # cannot be joined.
    public_rooms_local_only: bool = False
    # A_28358: redacting an event older than this many hours is refused (None: no window).
    redaction_window_hours: int | None = None
    # A_25395-02 ff.: no threads (m.thread relations), reactions only with a single emoji.
    forbid_threads: bool = False
    single_emoji_reactions_only: bool = False
    # A_25534, A_25537: federation only with servers on the signed TI-Messenger federation list
    # (in use once [federation.ti_messenger_list] url is set; compliance/timlist/).
    ti_messenger_federation_list: bool = False

    def as_rows(self) -> list[tuple[str, Any, str]]:
        """(setting, value, requirement IDs) in declaration order, for the admin and evidence."""
        return [(f.name, getattr(self, f.name), SETTING_REQUIREMENTS.get(f.name, ""))
                for f in dataclasses.fields(self)]


def _tim(**extra: Any) -> ProfileSettings:
    base: dict[str, Any] = {
        "e2ee_only": True,
        "missing_encryption": "add",  # A_25323-01: rooms are created encrypted by default
        "cleartext_allowlist": ("m.room.redaction", "m.reaction"),
        "tim_room_defaults": True,
        "max_invites_on_create": 1,
        "allowed_create_room_versions": ("9", "10"),
        "default_create_room_version": "10",
        "forbidden_join_rule_changes": ("public",),
        "forbid_world_readable": True,
        "public_rooms_local_only": True,
        "redaction_window_hours": 24,
        "forbid_threads": True,
        "single_emoji_reactions_only": True,
        "ti_messenger_federation_list": True,
    }
    return ProfileSettings(**{**base, **extra})


PROFILES: dict[str, ProfileSettings] = {
    "standard": ProfileSettings(),
    "strict": ProfileSettings(
        e2ee_only=True,
        cleartext_allowlist=("m.room.redaction",),
        forbid_world_readable=True,
    ),
    "bwmessenger": ProfileSettings(
        e2ee_only=True,
        cleartext_allowlist=("m.room.redaction", "m.reaction"),
        forbid_world_readable=True,
        public_rooms_local_only=True,
    ),
    "ti-m-basis": _tim(),
    "ti-m-pro": _tim(),
    "ti-m-epa": _tim(forbidden_join_rules=OPEN_JOIN_RULES, forbid_public_rooms=True),
}
PROFILE_NAMES = tuple(PROFILES)

# Which requirements (REQUIREMENTS.md) each setting serves; shown beside the effective settings.
_FORBIDDEN_FEATURES = "A_25395-02, A_26228-01, A_26344, A_28596, A_28271 (forbidden features)"
_ROOM_RULES = "A_25324-01, A_25325-01, A_26015-02, A_28587"
SETTING_REQUIREMENTS: dict[str, str] = {
    "e2ee_only": f"E2EE-only (Palisade, BwMessenger); {_ROOM_RULES}",
    "missing_encryption": "A_25323-01, A_25481 (add); E2EE-only (refuse)",
    "cleartext_allowlist": "E2EE-only",
    "tim_room_defaults": "A_25323-01, A_25481",
    "max_invites_on_create": "A_25368-01",
    "allowed_create_room_versions": "A_26202, A_26203, A_26248",
    "default_create_room_version": "A_26202, A_26203, A_26248",
    "forbidden_join_rules": _ROOM_RULES,
    "forbidden_join_rule_changes": _FORBIDDEN_FEATURES,
    "forbid_world_readable": _ROOM_RULES,
    "forbid_public_rooms": _ROOM_RULES,
    "public_rooms_local_only": "A_26515-01, A_26520, A_28590",
    "redaction_window_hours": "A_28358, A_25575-01, A_28355",
    "forbid_threads": _FORBIDDEN_FEATURES,
    "single_emoji_reactions_only": _FORBIDDEN_FEATURES,
    "ti_messenger_federation_list": "A_25534, AF_10064, A_25537",
}

# Settings `[compliance]` may override (the rest are fixed by the profile).
OVERRIDABLE = ("missing_encryption", "cleartext_allowlist", "redaction_window_hours")


def effective_settings(name: str, overrides: Any = None) -> ProfileSettings:
    """The profile's settings with the non-None overrides (an object or a mapping) applied.
    A redaction_window_hours override of 0 switches the window off."""
    if name not in PROFILES:
        raise ValueError(
            f"compliance_profile: unknown profile {name!r}; expected one of "
            f"{', '.join(PROFILE_NAMES)}"
        )
    if overrides is None:
        return PROFILES[name]
    get = overrides.get if isinstance(overrides, dict) else lambda k: getattr(overrides, k, None)
    changes = {k: get(k) for k in OVERRIDABLE if get(k) is not None}
    if changes.get("redaction_window_hours") == 0:
        changes["redaction_window_hours"] = None
    if "cleartext_allowlist" in changes:
        changes["cleartext_allowlist"] = tuple(changes["cleartext_allowlist"])
    return dataclasses.replace(PROFILES[name], **changes)


@dataclass(frozen=True)
class ActiveProfile:
    name: str
    settings: ProfileSettings
    policies: tuple[str, ...]  # "hook: module.function", in registration order
    registered: tuple[tuple[Any, Any], ...] = ()  # the (hook, policy) pairs, to unregister


_active = ActiveProfile("standard", PROFILES["standard"], ())


def activate_profile(name: str, overrides: Any = None) -> ActiveProfile:
    """Unregister the previous profile's policies and register those of profile `name` (with
    `[compliance]` overrides). Policies registered by anything else are left alone."""
    global _active
    from compliance import hooks
    from compliance.policies import policies_for

    settings = effective_settings(name, overrides)
    bound = policies_for(settings)
    for hook, policy in _active.registered:
        hooks.unregister(hook, policy)
    for hook, policy in bound:
        hooks.register(hook, policy)
    names = tuple(f"{hook}: {policy.__module__.rsplit('.', 1)[-1]}.{policy.__name__}"
                  for hook, policy in bound)
    _active = ActiveProfile(name, settings, names, tuple(bound))
    return _active


def active_profile() -> ActiveProfile:
    return _active
