"""The named policy choke points and the machinery that runs the active profile's policies.

Each hook is called exactly once on its path (ARCHITECTURE.md "Policy hooks"). A policy returns
ALLOW, a Deny (errcode + reason + the rule that decided) or a Rewrite (a replacement value for
what the hook guards, e.g. createRoom's initial state). A denial raises `PolicyDenied`; the
service boundary (`records_policy_denials`) writes its audit record after the action's own
transaction has rolled back, so the refused action leaves nothing but that record.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from django.db import transaction

from homeserver.protocol.errors import Errcode, MatrixError


class Hook(enum.StrEnum):
    ROOM_CREATE = "room_create"
    CLIENT_SEND = "client_send"
    INVITE = "invite"
    FEDERATION_REQUEST = "federation_request"
    FEDERATION_PDU = "federation_pdu"
    JOIN_REMOTE_ROOM = "join_remote_room"
    MEDIA_UPLOAD = "media_upload"


@dataclass(frozen=True)
class Deny:
    rule: str  # stable name of the rule, e.g. "e2ee_only.plaintext_message"
    reason: str  # shown to the user in the Matrix error
    errcode: str = Errcode.FORBIDDEN
    status: int = 403

    @property
    def policy(self) -> str:
        """The policy the rule belongs to: "e2ee_only" for "e2ee_only.plaintext"."""
        return self.rule.split(".", 1)[0]


@dataclass(frozen=True)
class Rewrite:
    rule: str
    value: Any


class _Allow:
    def __repr__(self) -> str:
        return "ALLOW"


ALLOW = _Allow()
Decision = _Allow | Deny | Rewrite
Policy = Callable[[dict[str, Any]], Decision]


class PolicyDenied(MatrixError):
    def __init__(self, hook: Hook, deny: Deny, context: dict[str, Any]) -> None:
        super().__init__(deny.status, deny.errcode, deny.reason)
        self.hook = hook
        self.rule = deny.rule
        self.policy = deny.policy
        self.reason = deny.reason
        self.context = context
        # Transaction depth at which the denial was audited (see records_policy_denials).
        self.recorded_depth: int | None = None


# hook -> ordered policies of the active profile; filled by compliance.profiles at start-up.
_registry: dict[Hook, list[Policy]] = {h: [] for h in Hook}


def register(hook: Hook, policy: Policy) -> None:
    _registry[hook].append(policy)


def unregister(hook: Hook, policy: Policy) -> None:
    if policy in _registry[hook]:
        _registry[hook].remove(policy)


def clear() -> None:
    for policies in _registry.values():
        policies.clear()


def run(hook: Hook, context: dict[str, Any], value: Any = None) -> Any:
    """Run the hook's policies in order. Returns `value` as possibly rewritten; raises
    PolicyDenied on the first denial. `context` must hold no message content or secrets: it
    is what the audit record of a denial describes (who, which room, which event type)."""
    for policy in _registry[hook]:
        decision = policy({**context, "value": value})
        if isinstance(decision, Deny):
            raise PolicyDenied(hook, decision, context)
        if isinstance(decision, Rewrite):
            value = decision.value
    return value


P = ParamSpec("P")
R = TypeVar("R")


def records_policy_denials(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a do_* service: a PolicyDenied escaping it is audited in its own transaction
    (after the service's transaction rolled back) and re-raised for the view to render."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        entry_depth = len(transaction.get_connection().atomic_blocks)
        try:
            return fn(*args, **kwargs)
        except PolicyDenied as denied:
            from audit.actions import ActorType, AuditAction
            from audit.log import record

            # Nested do_* services each wrap. A record written by an inner wrapper entered at
            # the same transaction depth as this one is still alive: done. One written deeper
            # was rolled back with the transactions the exception unwound: write it again.
            if denied.recorded_depth is not None and denied.recorded_depth <= entry_depth:
                raise
            denied.recorded_depth = entry_depth
            ctx = denied.context
            with transaction.atomic():
                record(
                    AuditAction.POLICY_DENIED,
                    actor=str(ctx.get("actor", "")),
                    actor_type=ActorType(ctx.get("actor_type", ActorType.USER)),
                    target=str(ctx.get("target", "")),
                    details={
                        "hook": str(denied.hook),
                        "policy": denied.policy,
                        "rule": denied.rule,
                        "reason": denied.reason,
                        "errcode": denied.errcode,
                        **{
                            k: v
                            for k, v in ctx.items()
                            if k not in ("actor", "actor_type", "target")
                        },
                    },
                )
            raise

    return wrapper
