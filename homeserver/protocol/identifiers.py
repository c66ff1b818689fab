"""Matrix identifiers as validated, immutable types: parse once at the edge, then pass types.

Spec: appendices, "Identifier Grammar" (Server Name, Common Identifier Format, User Identifiers,
Historical User IDs, Room IDs, Room Aliases, Event IDs).

Every instance satisfies `str(X.parse(s)) == s`: identifiers are compared as case-sensitive
strings, so parsing never normalises. Forms that would need normalising to print back the same
way (ports or IPv4 octets with leading zeros) are rejected instead.

Each constructor (`__post_init__`) enforces the rules that hold for every identifier of its kind,
including ones received over federation; `UserID.parse` additionally enforces the current,
stricter user-ID localpart grammar, while `UserID.parse_historical` does not.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from homeserver.protocol.room_versions import EventFormat, RoomVersion

# Spec: appendices, Server Name grammar. Python's `$` would accept a trailing newline, so every
# pattern is used with fullmatch; `[0-9]` (not `\d`) keeps non-ASCII digits out.
_DNS_NAME = re.compile(r"[A-Za-z0-9.\-]{1,255}")
_DOTTED_QUAD = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV4_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]{2,45}")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
# Spec: appendices, User Identifiers: user_id_char = DIGIT / a-z / "-" / "." / "=" / "_" / "/" / "+"
_USER_LOCALPART = re.compile(r"[a-z0-9._=\-/+]+")
# Spec: appendices, Historical User IDs: compliant localparts use only U+0021..U+007E.
_COMPLIANT_LOCALPART = re.compile(r"[\x21-\x7e]+")
# Spec: appendices, Room IDs / Room Aliases / Historical User IDs: no NUL, no surrogates.
_FORBIDDEN_OPAQUE = re.compile("[\x00\ud800-\udfff]")
# Spec: rooms v3 / v4 "Event IDs": '$' + unpadded Base64 of a sha256 reference hash (43 chars).
_HASH_STANDARD = re.compile(r"[A-Za-z0-9+/]{43}")
_HASH_URLSAFE = re.compile(r"[A-Za-z0-9\-_]{43}")
_HASH_ANY = re.compile(r"[A-Za-z0-9+/\-_]{43}")

# Spec: appendices, Common Identifier Format / User / Room / Alias / Event IDs: <= 255 bytes.
MAX_IDENTIFIER_BYTES = 255


class InvalidIdentifier(ValueError):
    """A string is not a valid identifier of the expected kind."""


def _fail(kind: str, value: object, reason: str) -> InvalidIdentifier:
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return InvalidIdentifier(f"invalid {kind} {shown}: {reason}")


def _split_sigil(kind: str, text: object, sigil: str) -> tuple[str, str | None]:
    """Split `&opaque[:domain]` at the first colon (localparts never contain one)."""
    if not isinstance(text, str):
        raise _fail(kind, text, "not a string")
    if not text.startswith(sigil):
        raise _fail(kind, text, f"must start with {sigil!r}")
    opaque, colon, domain = text[1:].partition(":")
    return opaque, (domain if colon else None)


def _check_types(kind: str, local: object, server: object, *, optional_server: bool) -> None:
    if not isinstance(local, str):
        raise _fail(kind, local, "localpart is not a string")
    if not isinstance(server, ServerName) and not (optional_server and server is None):
        raise _fail(kind, server, "server_name must be a ServerName (use .parse for strings)")


def _check_length(kind: str, text: str) -> None:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _fail(kind, text, "contains a surrogate code point") from None
    if size > MAX_IDENTIFIER_BYTES:
        raise _fail(kind, text, f"longer than {MAX_IDENTIFIER_BYTES} bytes")


def _check_opaque(kind: str, text: str, opaque: str) -> None:
    if _FORBIDDEN_OPAQUE.search(opaque):
        raise _fail(kind, text, "localpart contains NUL or a surrogate code point")


@dataclass(frozen=True, slots=True)
class ServerName:
    """`hostname [":" port]`. `host` is as written (IPv6 literals keep their brackets)."""

    host: str
    port: int | None = None

    def __post_init__(self) -> None:
        _validate_host(self.host)
        if self.port is not None and (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 1 <= self.port <= 65535
        ):
            raise _fail("server name", str(self), "port must be an integer from 1 to 65535")

    @classmethod
    def parse(cls, text: object) -> ServerName:
        if not isinstance(text, str):
            raise _fail("server name", text, "not a string")
        if text.startswith("["):
            # Spec: appendices, Server Name: "[" IPv6address "]" [":" port].
            end = text.find("]")
            if end == -1:
                raise _fail("server name", text, "unterminated IPv6 literal")
            host, rest = text[: end + 1], text[end + 1 :]
            if rest and not rest.startswith(":"):
                raise _fail("server name", text, "unexpected text after IPv6 literal")
            port_text = rest[1:] if rest else None
        else:
            host, colon, port_text_or_empty = text.partition(":")
            port_text = port_text_or_empty if colon else None
        port = None
        if port_text is not None:
            # Spec: appendices, Server Name: port = 1*5DIGIT; values above 65535 or 0 cannot
            # be connected to; a leading zero would not print back identically.
            if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
                raise _fail("server name", text, "port must be an integer from 1 to 65535")
            port = int(port_text)
        return cls(host, port)

    @property
    def ip_literal(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The address when the host is an IP literal (no DNS lookup applies), else None."""
        if self.host.startswith("["):
            return ipaddress.IPv6Address(self.host[1:-1])
        if _DOTTED_QUAD.fullmatch(self.host):
            return ipaddress.IPv4Address(self.host)
        return None

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"ServerName({str(self)!r})"


def _validate_host(host: object) -> None:
    if not isinstance(host, str) or not host:
        raise _fail("server name", host, "empty or not a string")
    if host.startswith("["):
        # Spec: appendices, Server Name: IPv6address = 2*45IPv6char, as in RFC 3513 section 2.2.
        inner = host[1:-1] if host.endswith("]") else ""
        try:
            if not _IPV6_CHARS.fullmatch(inner):
                raise ValueError(inner)
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise _fail("server name", host, "not a valid IPv6 literal") from None
    elif _DOTTED_QUAD.fullmatch(host):
        # Spec: appendices, Server Name: IPv4 literals are four decimal numbers 0-255. A
        # dotted quad outside that is not treated as a DNS name; leading zeros are refused
        # because resolvers disagree on whether they mean octal.
        if not all(_IPV4_OCTET.fullmatch(octet) and int(octet) <= 255 for octet in host.split(".")):
            raise _fail("server name", host, "not a valid IPv4 literal")
    elif not _DNS_NAME.fullmatch(host):
        # Spec: appendices, Server Name: dns-name = 1*255dns-char (letters, digits, "-", ".").
        raise _fail("server name", host, "hostname must be 1-255 letters, digits, '-' or '.'")


@dataclass(frozen=True, slots=True)
class UserID:
    """`@localpart:server_name`. Instances may hold historical localparts; see `parse`."""

    localpart: str
    server_name: ServerName

    def __post_init__(self) -> None:
        _check_types("user ID", self.localpart, self.server_name, optional_server=False)
        text = str(self)
        # Spec: appendices, Historical User IDs: any non-surrogate code point except ":" and NUL,
        # including the empty string.
        if ":" in self.localpart:
            raise _fail("user ID", text, "localpart contains ':'")
        _check_opaque("user ID", text, self.localpart)
        # Spec: appendices, User Identifiers: the whole user ID MUST NOT exceed 255 bytes.
        _check_length("user ID", text)

    @classmethod
    def parse(cls, text: object) -> UserID:
        """Parse a user ID under the current grammar (what this server may create or accept
        from clients). Spec: appendices, User Identifiers."""
        user_id = cls.parse_historical(text)
        if not cls.is_valid_localpart(user_id.localpart):
            raise _fail(
                "user ID", text, "localpart must be non-empty and use only a-z 0-9 . _ = - / +"
            )
        return user_id

    @classmethod
    def parse_historical(cls, text: object) -> UserID:
        """Parse a user ID received over federation, accepting historical localparts.
        Spec: appendices, Historical User IDs (servers MUST accept these in events)."""
        localpart, domain = _split_sigil("user ID", text, "@")
        if domain is None:
            raise _fail("user ID", text, "missing ':server_name'")
        return cls(localpart, _server_name("user ID", text, domain))

    @staticmethod
    def is_valid_localpart(localpart: str) -> bool:
        """True if `localpart` matches the current grammar: 1+ of [a-z0-9._=-/+]."""
        return bool(_USER_LOCALPART.fullmatch(localpart))

    @property
    def is_compliant(self) -> bool:
        """False for historical IDs the spec calls non-compliant (empty, or characters outside
        U+0021..U+007E): servers SHOULD NOT forward those to clients outside events."""
        return bool(_COMPLIANT_LOCALPART.fullmatch(self.localpart))

    def __str__(self) -> str:
        return f"@{self.localpart}:{self.server_name}"

    def __repr__(self) -> str:
        return f"UserID({str(self)!r})"


@dataclass(frozen=True, slots=True)
class RoomID:
    """`!opaque:server_name` (rooms v1-v11) or `!` + 43 URL-safe Base64 chars (rooms v12+,
    the create event's reference hash; `server_name` is None)."""

    opaque: str
    server_name: ServerName | None = None

    def __post_init__(self) -> None:
        _check_types("room ID", self.opaque, self.server_name, optional_server=True)
        text = str(self)
        if self.server_name is None:
            # Spec: appendices, Room IDs + rooms v12: the create event's ID with '!' as sigil.
            if not _HASH_URLSAFE.fullmatch(self.opaque):
                raise _fail("room ID", text, "expected '!' + 43 URL-safe Base64 characters")
            return
        # Spec: appendices, Room IDs: localpart of non-surrogate code points except ":" and NUL.
        if not self.opaque or ":" in self.opaque:
            raise _fail("room ID", text, "localpart must be non-empty and contain no ':'")
        _check_opaque("room ID", text, self.opaque)
        _check_length("room ID", text)

    @classmethod
    def parse(cls, text: object, room_version: RoomVersion | None = None) -> RoomID:
        """Parse either form; with `room_version`, require the form that version uses."""
        opaque, domain = _split_sigil("room ID", text, "!")
        if room_version is not None:
            # Spec: rooms v12, Event format: room IDs have no domain from this version on.
            if room_version.room_id_from_create_event and domain is not None:
                raise _fail("room ID", text, "this room version uses room IDs without a domain")
            if not room_version.room_id_from_create_event and domain is None:
                raise _fail("room ID", text, "this room version requires '!opaque:server_name'")
        if domain is None:
            return cls(opaque)
        return cls(opaque, _server_name("room ID", text, domain))

    @property
    def create_event_id(self) -> str | None:
        """For domain-less room IDs, the ID of the room's m.room.create event."""
        return None if self.server_name is not None else "$" + self.opaque

    def __str__(self) -> str:
        if self.server_name is None:
            return "!" + self.opaque
        return f"!{self.opaque}:{self.server_name}"

    def __repr__(self) -> str:
        return f"RoomID({str(self)!r})"


@dataclass(frozen=True, slots=True)
class EventID:
    """`$opaque:server_name` (rooms v1-v2) or `$` + 43-char reference hash (rooms v3+;
    standard Base64 in v3, URL-safe in v4+; `server_name` is None)."""

    opaque: str
    server_name: ServerName | None = None

    def __post_init__(self) -> None:
        _check_types("event ID", self.opaque, self.server_name, optional_server=True)
        text = str(self)
        if self.server_name is None:
            # Spec: rooms v3 / v4 Event IDs: unpadded Base64 (either alphabet) of a sha256.
            if not _HASH_ANY.fullmatch(self.opaque):
                raise _fail("event ID", text, "expected '$' + 43 Base64 characters")
            return
        # Spec: rooms v1 Event IDs: `$opaque_id:domain`; appendices, Event IDs: <= 255 bytes.
        if not self.opaque or ":" in self.opaque:
            raise _fail("event ID", text, "localpart must be non-empty and contain no ':'")
        _check_opaque("event ID", text, self.opaque)
        _check_length("event ID", text)

    @classmethod
    def parse(cls, text: object, room_version: RoomVersion | None = None) -> EventID:
        """Parse any form; with `room_version`, require the exact form of its event format."""
        opaque, domain = _split_sigil("event ID", text, "$")
        if room_version is not None:
            fmt = room_version.event_format
            if (fmt is EventFormat.V1) != (domain is not None):
                want = "'$opaque:server_name'" if fmt is EventFormat.V1 else "a hash event ID"
                raise _fail("event ID", text, f"this room version requires {want}")
            # Spec: rooms v3 uses standard unpadded Base64, rooms v4+ the URL-safe alphabet.
            if fmt is EventFormat.V2 and not _HASH_STANDARD.fullmatch(opaque):
                raise _fail("event ID", text, "expected '$' + 43 standard Base64 characters")
            if fmt is EventFormat.V3 and not _HASH_URLSAFE.fullmatch(opaque):
                raise _fail("event ID", text, "expected '$' + 43 URL-safe Base64 characters")
        if domain is None:
            return cls(opaque)
        return cls(opaque, _server_name("event ID", text, domain))

    def __str__(self) -> str:
        if self.server_name is None:
            return "$" + self.opaque
        return f"${self.opaque}:{self.server_name}"

    def __repr__(self) -> str:
        return f"EventID({str(self)!r})"


@dataclass(frozen=True, slots=True)
class RoomAlias:
    """`#alias:server_name`."""

    alias: str
    server_name: ServerName

    def __post_init__(self) -> None:
        _check_types("room alias", self.alias, self.server_name, optional_server=False)
        text = str(self)
        # Spec: appendices, Room Aliases: any non-surrogate code point except ":" and NUL;
        # including sigil and domain, at most 255 bytes.
        if not self.alias or ":" in self.alias:
            raise _fail("room alias", text, "alias must be non-empty and contain no ':'")
        _check_opaque("room alias", text, self.alias)
        _check_length("room alias", text)

    @classmethod
    def parse(cls, text: object) -> RoomAlias:
        alias, domain = _split_sigil("room alias", text, "#")
        if domain is None:
            raise _fail("room alias", text, "missing ':server_name'")
        return cls(alias, _server_name("room alias", text, domain))

    def __str__(self) -> str:
        return f"#{self.alias}:{self.server_name}"

    def __repr__(self) -> str:
        return f"RoomAlias({str(self)!r})"


def _server_name(kind: str, text: object, domain: str) -> ServerName:
    try:
        return ServerName.parse(domain)
    except InvalidIdentifier as exc:
        raise _fail(kind, text, f"bad server name: {exc}") from None
