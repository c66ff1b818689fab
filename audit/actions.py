"""What the audit chain records: numbered actions in ranges of 1000, one range per category.

Numbers are stored in the chain and covered by its hashes, so a number is never reused or
renumbered; retired actions keep their number. Later issues add members inside their range.
"""

from __future__ import annotations

import enum


class AuditCategory(enum.StrEnum):
    """A range of 1000 action numbers, named. ACCOUNTS covers 1000..1999, ROOMS 2000..2999..."""

    ACCOUNTS = "accounts"
    ROOMS = "rooms"
    MEMBERSHIP = "membership"
    POLICY = "policy"
    FEDERATION = "federation"
    ADMIN = "admin"
    EXPORTS = "exports"
    CONFIGURATION = "configuration"

    @property
    def number(self) -> int:
        """1 for accounts .. 8 for configuration: the thousands digit of its actions."""
        return list(AuditCategory).index(self) + 1

    @property
    def label(self) -> str:
        return _CATEGORY_LABELS[self]

    @property
    def action_range(self) -> tuple[int, int]:
        """Inclusive lower and exclusive upper bound of this category's action numbers."""
        return self.number * 1000, self.number * 1000 + 1000


_CATEGORY_LABELS = {
    AuditCategory.ACCOUNTS: "Accounts",
    AuditCategory.ROOMS: "Rooms",
    AuditCategory.MEMBERSHIP: "Membership",
    AuditCategory.POLICY: "Policy decisions",
    AuditCategory.FEDERATION: "Federation",
    AuditCategory.ADMIN: "Admin changes",
    AuditCategory.EXPORTS: "Exports and verification",
    AuditCategory.CONFIGURATION: "Configuration",
}
_BY_NUMBER = {c.number: c for c in AuditCategory}


class AuditAction(enum.IntEnum):
    # 1000: accounts
    USER_CREATED = 1001
    USER_DEACTIVATED = 1002
    USER_ERASED = 1003
    LOGIN_SUCCEEDED = 1004
    LOGIN_FAILED = 1005
    LOGOUT = 1006
    DEVICE_ADDED = 1007
    DEVICE_REMOVED = 1008
    PASSWORD_CHANGED = 1009
    # 1100..1199: directory and conveniences (issue 5)
    OPENID_TOKEN_ISSUED = 1101
    # 1200..1299: end-to-end encryption keys (issue 6; details carry key ids, never key material)
    DEVICE_KEYS_UPLOADED = 1201
    CROSS_SIGNING_KEYS_CHANGED = 1202
    KEY_SIGNATURES_UPLOADED = 1203
    KEY_BACKUP_CREATED = 1204
    KEY_BACKUP_UPDATED = 1205
    KEY_BACKUP_DELETED = 1206
    # 1300..1399: push notifications (pushers decide where notifications leave the server;
    # details carry the app id and gateway origin, never the pushkey)
    PUSHER_SET = 1301
    PUSHER_REMOVED = 1302
    # 1400..1499: identity providers, SSO and the OAuth 2.0 API (issue 8; details name the
    # provider, subject hash and reason, never tokens or claims that hold secrets)
    SSO_ACCOUNT_LINKED = 1401
    SSO_BACKCHANNEL_LOGOUT = 1402
    USER_DEPROVISIONED = 1403
    SSO_STAFF_ROLES_SYNCED = 1404
    OAUTH_CLIENT_REGISTERED = 1405
    OAUTH_CONSENT_GRANTED = 1406
    OAUTH_SESSION_REVOKED = 1407
    # 2000: rooms
    ROOM_CREATED = 2001
    # 2100..2199: directory and conveniences (issue 5)
    ROOM_UPGRADED = 2101
    ROOM_ALIAS_CREATED = 2102
    ROOM_ALIAS_DELETED = 2103
    ROOM_DIRECTORY_VISIBILITY_CHANGED = 2104
    # 3000: membership
    MEMBERSHIP_CHANGED = 3001
    # 4000: policy decisions (any hook; details name the hook, policy and reason, never content)
    POLICY_DENIED = 4001
    POLICY_REWRITTEN = 4002
    # 5000: federation (federation-list changes and decisions arrive with their issue)
    # 5100..5199: federation lists (admin-managed allow/deny entries are audited as admin
    # changes; these are the TI-Messenger federation list's refreshes, rejections, incidents)
    TIM_FEDERATION_LIST_UPDATED = 5101
    TIM_FEDERATION_LIST_REJECTED = 5102
    TIM_FEDERATION_LIST_INCIDENT = 5103
    # 5300: federation outbound queue: rows for a destination the lists now refuse, dropped
    FEDERATION_OUTBOUND_DROPPED = 5301
    # 6000: admin changes (admin UI; details carry before/after values, secrets redacted)
    ADMIN_LOGIN = 6001
    ADMIN_OBJECT_ADDED = 6002
    ADMIN_OBJECT_CHANGED = 6003
    ADMIN_OBJECT_DELETED = 6004
    # 6100..6199: media repository (uploads themselves are not audited: too frequent)
    MEDIA_QUARANTINED = 6101
    MEDIA_UNQUARANTINED = 6102
    MEDIA_DELETED = 6103
    # 7000: exports and verification of the audit log itself
    AUDIT_EXPORTED = 7001
    AUDIT_VERIFIED = 7002
    # 8000: configuration
    CONFIG_LOADED = 8001

    @property
    def category(self) -> AuditCategory:
        return category_of(self.value)

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


def category_of(action: int) -> AuditCategory:
    """The category of an action number, including numbers this build has no member for."""
    return _BY_NUMBER[action // 1000]


def action_label(action: int) -> str:
    """Display name of an action number; numbers unknown to this build still render."""
    try:
        return AuditAction(action).label
    except ValueError:
        return f"Action {action}"


class ActorType(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"
    SYSTEM = "system"
    REMOTE_SERVER = "remote_server"
