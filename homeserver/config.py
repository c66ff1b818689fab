"""Operator configuration: one TOML file plus environment overrides -> frozen typed objects.

Django settings are derived from the `Config` returned by `load_config` (see settings.py). A bad
file raises `ConfigError` whose message names the key and the expected form; `palisade serve`
and `manage.py` print it without a traceback.

Environment overrides: `PALISADE__SECTION__KEY=value` sets `[section] key = value` (values are
parsed as TOML when they parse, else taken as strings), and the shorthands `PALISADE_DATABASE_URL`,
`PALISADE_REDIS_URL` and `PALISADE_SERVER_NAME` cover what deployments override most.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from homeserver.protocol.identifiers import InvalidIdentifier, ServerName
from homeserver.protocol.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS

ENV_PREFIX = "PALISADE__"
SHORTHANDS = {
    "PALISADE_DATABASE_URL": ("database", "url"),
    "PALISADE_REDIS_URL": ("redis", "url"),
    "PALISADE_SERVER_NAME": ("server_name",),
}


class ConfigError(Exception):
    """A configuration problem an operator can fix; the message says where and how."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseConfig(_Section):
    # sqlite:///relative/or/absolute/path or postgresql://user:pass@host:port/dbname
    url: str = "sqlite:///data/palisade.sqlite3"
    conn_max_age: int = Field(default=60, ge=0)

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite://", "postgres://", "postgresql://")):
            raise ValueError(
                "expected sqlite:///path/to/db.sqlite3 or postgresql://user@host:5432/dbname"
            )
        return v

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(("postgres://", "postgresql://"))


class RedisConfig(_Section):
    # Empty: in-memory channel layer and eager (in-process) tasks — the embedded default.
    url: str = ""

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://host:6379/0 (or empty for the embedded default)")
        return v


class ListenerConfig(_Section):
    bind: str = "127.0.0.1"
    port: int = Field(default=8008, ge=1, le=65535)
    # Which APIs this listener serves: "client" (client-server, media, admin) and/or "federation"
    # (server-server and key APIs).
    resources: tuple[Literal["client", "federation"], ...] = ("client", "federation")
    tls_certificate: str = ""
    tls_private_key: str = ""


class RateLimit(_Section):
    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)


class RateLimitsConfig(_Section):
    enabled: bool = True
    message: RateLimit = RateLimit(per_second=10, burst=50)
    login: RateLimit = RateLimit(per_second=0.2, burst=5)
    registration: RateLimit = RateLimit(per_second=0.2, burst=5)
    federation: RateLimit = RateLimit(per_second=50, burst=200)


class RoomsConfig(_Section):
    default_version: str = DEFAULT_ROOM_VERSION

    @field_validator("default_version")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in KNOWN_ROOM_VERSIONS:
            raise ValueError(f"expected one of {', '.join(KNOWN_ROOM_VERSIONS)}")
        return v


class OldVerifyKey(_Section):
    key: str  # unpadded base64 ed25519 public key
    expired_ts: int = Field(ge=0)


class WellKnownConfig(_Section):
    # /.well-known/matrix/server: "host:port" other servers use for federation; empty = not served.
    server: str = ""
    # Extra keys merged into /.well-known/matrix/client (e.g. "m.identity_server").
    client_extra: dict[str, Any] = {}
    # /.well-known/matrix/support (spec v1.10): contacts and support page.
    support_contacts: tuple[dict[str, str], ...] = ()
    support_page: str = ""


class RegistrationConfig(_Section):
    enabled: bool = False
    require_token: bool = False


class AuditConfig(_Section):
    """[audit]: signed checkpoints of the audit chain (see docs/audit.md)."""

    # A checkpoint is signed after every N records, or on the first append once T minutes have
    # passed since the last one (`manage.py audit checkpoint` covers idle periods).
    checkpoint_every_records: int = Field(default=1000, ge=1)
    checkpoint_every_minutes: int = Field(default=15, ge=1)
    # ed25519 key that signs checkpoints and export bundles; created on first use.
    signing_key_path: str = "data/audit_signing.key"
    # External append-only sink: every checkpoint is appended here as one JSON line (empty: off).
    sink_path: str = "data/audit_checkpoints.jsonl"
    # Also send every checkpoint to the local syslog (facility authpriv).
    syslog: bool = False


class FederationConfig(_Section):
    """[federation]: who we talk to and how (see docs/federation.md)."""

    enabled: bool = True
    # Server names (with ports where used) allowed in either direction; None = any server not
    # on deny_list. Entries may start with "*." to cover subdomains. Compliance officers manage
    # further entries in the admin UI.
    allow_list: tuple[str, ...] | None = None
    deny_list: tuple[str, ...] = ()
    # Verify peers' TLS certificates (turn off ONLY for loopback test federations).
    verify_tls: bool = True
    # Extra CA bundle (PEM) trusted for peers, e.g. a private federation's CA.
    ca_file: str = ""
    # Outbound requests to loopback/private/link-local addresses are refused (SSRF) unless on.
    allow_private_addresses: bool = False
    # Notaries asked for keys a server cannot serve itself: {server_name, verify_keys}.
    trusted_key_servers: tuple[dict, ...] = ()
    request_timeout_seconds: float = Field(default=30, gt=0)


class Config(_Section):
    server_name: str = "localhost:8008"
    public_baseurl: str = "http://127.0.0.1:8008/"
    signing_key_path: str = "data/signing.key"
    # Public keys of retired signing keys, still published as old_verify_keys.
    old_verify_keys: dict[str, OldVerifyKey] = {}
    registration_shared_secret: str = ""
    compliance_profile: str = "standard"
    secret_key: str = ""
    debug: bool = False
    media_path: str = "data/media"
    listeners: tuple[ListenerConfig, ...] = (ListenerConfig(),)
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    database: DatabaseConfig = DatabaseConfig()
    redis: RedisConfig = RedisConfig()
    rate_limits: RateLimitsConfig = RateLimitsConfig()
    rooms: RoomsConfig = RoomsConfig()
    registration: RegistrationConfig = RegistrationConfig()
    well_known: WellKnownConfig = WellKnownConfig()
    audit: AuditConfig = AuditConfig()
    federation: FederationConfig = FederationConfig()

    @field_validator("server_name")
    @classmethod
    def _server_name(cls, v: str) -> str:
        try:
            ServerName.parse(v)
        except InvalidIdentifier as e:
            raise ValueError(
                f"expected a server name like example.org or 127.0.0.1:8448 ({e})"
            ) from None
        return v

    @field_validator("public_baseurl")
    @classmethod
    def _baseurl(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("expected an absolute URL like https://matrix.example.org/")
        return v if v.endswith("/") else v + "/"

    @property
    def base_dir(self) -> Path:
        return Path(os.environ.get("PALISADE_DATA_ROOT", "."))

    def fingerprint(self) -> str:
        """SHA-256 of the effective configuration (secrets included only as their hash)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


def _apply_env(raw: dict[str, Any], environ: os._Environ[str] | dict[str, str]) -> None:
    def put(path: tuple[str, ...], value: str) -> None:
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment override {'.'.join(path)}: {part} is not a table")
        try:
            node[path[-1]] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            node[path[-1]] = value

    for name, value in environ.items():
        if name.startswith(ENV_PREFIX):
            put(tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__")), value)
        elif name in SHORTHANDS and value != "":
            put(SHORTHANDS[name], value)


def _format_error(source: str, err: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see palisade.example.toml)"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str] | None = None, environ: Any = None) -> Config:
    """Read the TOML file at `path` (missing file = all defaults), apply env overrides, validate."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None and Path(path).exists():
        source = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"invalid configuration in {source}: not valid TOML: {e}") from None
    elif path is not None:
        raise ConfigError(f"configuration file {path} does not exist")
    _apply_env(raw, environ)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_error(source, e)) from None


def config_path_from_env(environ: Any = None) -> str | None:
    environ = os.environ if environ is None else environ
    return environ.get("PALISADE_CONFIG") or None
