"""The seam where federation plugs into the end-to-end encryption APIs.

Spec: client-server API POST /keys/query and /keys/claim ("failures": servers that could not be
reached) and "Send-to-Device messaging" (messages for remote users go out over federation;
server-server API "Device Management" and "End-to-End Encryption").

Everything here concerns users of OTHER servers. Until the federation issue replaces `backend`
(`remote.backend = FederationE2EE(...)`), remote servers are reported as unreachable and
to-device messages for them are dropped with a log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)


@dataclass
class RemoteKeysResult:
    """Parts of a /keys/query or /keys/claim response from remote servers, merged per user,
    plus `failures` keyed by server name."""

    device_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    master_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    self_signing_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    one_time_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)


class RemoteE2EE(Protocol):
    def query_keys(self, requester: str, by_server: dict[str, dict[str, list[str]]],
                   timeout_ms: int) -> RemoteKeysResult:
        """/keys/query for remote users: server -> user -> device IDs ([] = all)."""
        ...

    def claim_keys(self, requester: str, by_server: dict[str, dict[str, dict[str, str]]],
                   timeout_ms: int) -> RemoteKeysResult:
        """/keys/claim for remote users: server -> user -> device -> algorithm."""
        ...

    def send_to_device(self, sender: str, event_type: str, message_id: str,
                       by_server: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Queue m.direct_to_device EDUs: server -> user -> device (or "*") -> content. Called
        after the sending transaction committed."""
        ...


class NoFederation:
    """No federation yet: every remote server is a failure, remote to-device is dropped."""

    UNREACHABLE = {"status": 503, "message": "Federation is not available on this server"}

    def query_keys(self, requester: str, by_server: dict[str, dict[str, list[str]]],
                   timeout_ms: int) -> RemoteKeysResult:
        return RemoteKeysResult(failures={s: dict(self.UNREACHABLE) for s in by_server})

    def claim_keys(self, requester: str, by_server: dict[str, dict[str, dict[str, str]]],
                   timeout_ms: int) -> RemoteKeysResult:
        return RemoteKeysResult(failures={s: dict(self.UNREACHABLE) for s in by_server})

    def send_to_device(self, sender: str, event_type: str, message_id: str,
                       by_server: dict[str, dict[str, dict[str, Any]]]) -> None:
        logger.warning("dropping %s to-device message(s) from %s for remote servers %s",
                       event_type, sender, sorted(by_server))


backend: RemoteE2EE = NoFederation()
