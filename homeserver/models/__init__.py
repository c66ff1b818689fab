"""The homeserver's tables, one module per aggregate. Only homeserver/storage queries them."""

from homeserver.models.accounts import (
    AccessToken,
    Account,
    AccountData,
    Device,
    Filter,
    Profile,
    RefreshToken,
    RegistrationNonce,
    RegistrationToken,
    UIASession,
)
from homeserver.models.events import (
    Event,
    EventAuthEdge,
    EventEdge,
    EventRelation,
    ForwardExtremity,
)
from homeserver.models.federation import ServerKey
from homeserver.models.rooms import ForgottenRoom, Room, RoomAlias
from homeserver.models.state import CurrentState, StateGroup, StateGroupEntry
from homeserver.models.stream import ClientTxn, StreamCounter

__all__ = [
    "AccessToken",
    "Account",
    "AccountData",
    "ClientTxn",
    "CurrentState",
    "Device",
    "Event",
    "EventAuthEdge",
    "EventEdge",
    "EventRelation",
    "Filter",
    "ForgottenRoom",
    "ForwardExtremity",
    "Profile",
    "RefreshToken",
    "RegistrationNonce",
    "RegistrationToken",
    "Room",
    "RoomAlias",
    "ServerKey",
    "StateGroup",
    "StateGroupEntry",
    "StreamCounter",
    "UIASession",
]
