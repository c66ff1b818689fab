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
from homeserver.models.directory import OpenIdToken
from homeserver.models.e2ee import (
    CrossSigningKey,
    DeviceKeys,
    DeviceListChange,
    FallbackKey,
    KeySignature,
    OneTimeKey,
    RoomKeyBackup,
    RoomKeyBackupSession,
    ToDeviceMessage,
)
from homeserver.models.events import (
    Event,
    EventAuthEdge,
    EventEdge,
    EventRelation,
    ForwardExtremity,
)
from homeserver.models.federation import InboundTransaction, ServerKey
from homeserver.models.federation_edus import (
    DeviceListOutbound,
    InboundToDevice,
    RemoteCrossSigningKey,
    RemoteDevice,
    RemoteDeviceList,
)
from homeserver.models.federation_outbound import OutboundDestination, OutboundItem
from homeserver.models.media import (
    LocalMedia,
    MediaThumbnail,
    RemoteMedia,
    RemoteMediaThumbnail,
)
from homeserver.models.presence import Presence
from homeserver.models.push import EventPushAction, Pusher, PushRuleSet
from homeserver.models.receipts import ReadMark, Receipt
from homeserver.models.rooms import ForgottenRoom, Room, RoomAlias
from homeserver.models.state import CurrentState, StateGroup, StateGroupEntry
from homeserver.models.stream import ClientTxn, StreamCounter
from homeserver.models.typing import TypingState

__all__ = [
    "AccessToken",
    "Account",
    "AccountData",
    "ClientTxn",
    "CrossSigningKey",
    "CurrentState",
    "Device",
    "DeviceKeys",
    "DeviceListChange",
    "DeviceListOutbound",
    "Event",
    "EventAuthEdge",
    "EventEdge",
    "EventPushAction",
    "EventRelation",
    "FallbackKey",
    "Filter",
    "ForgottenRoom",
    "ForwardExtremity",
    "InboundToDevice",
    "InboundTransaction",
    "KeySignature",
    "LocalMedia",
    "MediaThumbnail",
    "OneTimeKey",
    "OpenIdToken",
    "OutboundDestination",
    "OutboundItem",
    "Presence",
    "Profile",
    "PushRuleSet",
    "Pusher",
    "ReadMark",
    "Receipt",
    "RefreshToken",
    "RegistrationNonce",
    "RegistrationToken",
    "RemoteCrossSigningKey",
    "RemoteDevice",
    "RemoteDeviceList",
    "RemoteMedia",
    "RemoteMediaThumbnail",
    "Room",
    "RoomAlias",
    "RoomKeyBackup",
    "RoomKeyBackupSession",
    "ServerKey",
    "StateGroup",
    "StateGroupEntry",
    "StreamCounter",
    "ToDeviceMessage",
    "TypingState",
    "UIASession",
]
