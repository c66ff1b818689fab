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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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
    # PostgreSQL only: a bounded connection pool per server process (Django's native psycopg
    # pool). 0 turns it off (then conn_max_age applies). The Matrix API's database threads
    # keep pool_max_size - 2 of them (homeserver/api/asgi_handler.py), so at least 3.
    pool_max_size: int = Field(default=10, ge=0)
    pool_min_size: int = Field(default=1, ge=0)
    # Seconds a request waits for a free pooled connection before it fails.
    pool_timeout: float = Field(default=10.0, gt=0)

    @field_validator("pool_max_size")
    @classmethod
    def _pool_size(cls, v: int) -> int:
        if v in (1, 2):
            raise ValueError("must be 0 (no pool) or at least 3: the Matrix API's database "
                             "threads keep pool_max_size - 2 connections, two stay for the rest")
        return v

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
    media_upload: RateLimit = RateLimit(per_second=1, burst=30)


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


class DirectoryConfig(_Section):
    """[directory]: the published room directory and the user directory (docs/directory.md)."""

    # GET/POST /publicRooms; false answers 403 M_FORBIDDEN (ePA profile: no public room list).
    public_rooms_enabled: bool = True
    # GET /publicRooms needs no token in the spec; this server asks for one unless false.
    public_rooms_require_auth: bool = True
    # User search also finds members of rooms with a public join rule or world_readable history;
    # false limits hits to users sharing a room (ePA).
    search_all_public_members: bool = True


class TurnConfig(_Section):
    """[turn]: GET /voip/turnServer. Empty uris = no TURN server offered (answer {})."""

    uris: tuple[str, ...] = ()
    # coturn `static-auth-secret`: credentials follow the TURN REST API convention
    # (username "<expiry>:<user_id>", password base64(HMAC-SHA1(secret, username))).
    shared_secret: str = ""
    user_lifetime_seconds: int = Field(default=86400, ge=60)

    @field_validator("uris")
    @classmethod
    def _uris(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for uri in v:
            if not uri.startswith(("turn:", "turns:")):  # Spec: voip.yaml pattern ^turns?:
                raise ValueError(f"expected turn:host:port?transport=udp URIs, got {uri!r}")
        return v

    @model_validator(mode="after")
    def _secret(self) -> TurnConfig:
        if self.uris and not self.shared_secret:
            raise ValueError("turn.shared_secret is required when turn.uris are set")
        return self


class OpenIdConfig(_Section):
    """[openid]: tokens from POST /user/{userId}/openid/request_token."""

    token_lifetime_seconds: int = Field(default=3600, ge=60, le=86400)


class ComplianceSection(_Section):
    """[compliance]: overrides of the selected profile's settings (docs/compliance.md); unset
    keys keep the profile's value."""

    missing_encryption: Literal["refuse", "add"] | None = None
    cleartext_allowlist: tuple[str, ...] | None = None
    redaction_window_hours: int | None = Field(default=None, ge=0)


class ThumbnailSize(_Section):
    width: int = Field(ge=1, le=4096)
    height: int = Field(ge=1, le=4096)
    method: Literal["crop", "scale"]


class MediaConfig(_Section):
    """[media]: the content repository (docs/media.md). Files live under `media_path`."""

    max_upload_size: int = Field(default=50 * 1024 * 1024, ge=1)
    legacy_unauthenticated_endpoints: bool = False
    thumbnail_sizes: tuple[ThumbnailSize, ...] = (
        ThumbnailSize(width=32, height=32, method="crop"),
        ThumbnailSize(width=96, height=96, method="crop"),
        ThumbnailSize(width=320, height=240, method="scale"),
        ThumbnailSize(width=640, height=480, method="scale"),
        ThumbnailSize(width=800, height=600, method="scale"),
    )
    max_thumbnails_per_media: int = Field(default=16, ge=0)
    max_image_pixels: int = Field(default=32_000_000, ge=1)
    animated_thumbnails: bool = True
    max_animated_frames: int = Field(default=100, ge=1)
    pending_upload_expiry_seconds: int = Field(default=86400, ge=60)
    max_pending_uploads: int = Field(default=10, ge=1)
    max_download_wait_ms: int = Field(default=20000, ge=0)
    remove_on_deactivation: bool = False


class PresenceConfig(_Section):
    """[presence]: spec client-server API "Presence"."""

    enabled: bool = True
    idle_after_seconds: int = Field(default=300, ge=10)
    offline_after_seconds: int = Field(default=1800, ge=10)


# Profiles whose push notifications carry content by default; all others send event_id_only.
PUSH_CONTENT_PROFILES = ("standard",)


class PushConfig(_Section):
    """[push]: push rules evaluation and delivery to push gateways (spec "Push Notifications",
    push gateway API)."""

    # false: notifications carry only event_id, room_id, counts, devices, prio (None: true
    # for the standard profile only). Pusher URLs must be https unless allow_http_gateways.
    include_content: bool | None = None
    allow_http_gateways: bool = False
    gateway_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_attempts: int = Field(default=8, ge=1, le=50)
    backoff_initial_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=900.0, gt=0)
    # "celery": the queue a plain `celery -A homeserver worker` consumes.
    celery_queue: str = "celery"
    notification_history_days: int = Field(default=30, ge=1)

    def include_content_for(self, profile: str) -> bool:
        if self.include_content is not None:
            return self.include_content
        return profile in PUSH_CONTENT_PROFILES


class TiMessengerListConfig(_Section):
    """[federation.ti_messenger_list]: the TI-Messenger federation list (REQUIREMENTS.md
    A_25534, A_25537; docs/federation.md). Active when `enabled`, or by default under the
    ti-m-* profiles when `url` is set."""

    enabled: bool | None = None  # None: on under ti-m-* profiles (then url is required)
    # The list's address, e.g. https://vzd.example/tim-provider-services/FederationList/
    # federationList.jws ("?version=N" is appended).
    url: str = ""
    # PEM file(s) with the trust anchor(s) the signer's x5c chain must lead to.
    trust_anchors: tuple[str, ...] = ()
    # Extra CA bundle (PEM) for the list server's TLS certificate; empty: the system store.
    tls_ca_file: str = ""
    refresh_interval_seconds: int = Field(default=3600, ge=60)
    retry_interval_seconds: int = Field(default=300, ge=10)
    max_age_hours: float = Field(default=72, gt=0)
    # Consecutive failed refreshes that raise an incident (audit record + error log).
    incident_after_failures: int = Field(default=3, ge=1)
    # An origin/destination not on the list triggers one re-fetch per refresh period; at most
    # one such re-fetch (for any domain) per this many seconds.
    unknown_domain_refetch_seconds: int = Field(default=60, ge=1)
    request_timeout_seconds: float = Field(default=5, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not v.startswith(("https://", "http://")):
            raise ValueError("expected https://host/.../federationList.jws")
        return v

    @model_validator(mode="after")
    def _complete(self) -> TiMessengerListConfig:
        if self.enabled and not (self.url and self.trust_anchors):
            raise ValueError("enabled = true needs url and trust_anchors")
        return self


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
    # Outbound queue (docs/federation.md "Outbound queue"): after a failed transaction a
    # destination waits retry_initial_seconds, doubling per failure up to retry_max_seconds.
    retry_initial_seconds: float = Field(default=10, gt=0)
    retry_max_seconds: float = Field(default=3600, gt=0)
    # How often Celery beat sweeps the queue for due destinations (restarts, lost retries).
    sweep_interval_seconds: float = Field(default=60, gt=0)
    # The Celery queue the sender tasks go to ("celery": what a plain worker consumes).
    celery_queue: str = "celery"
    ti_messenger_list: TiMessengerListConfig = TiMessengerListConfig()


class AttributeRequirement(_Section):
    """One condition on the provider's claims (docs/oidc.md "Attribute requirements")."""

    claim: str
    # Exactly one of: the claim (or one of its values, for a list claim) is one of these ...
    one_of: tuple[str, ...] = ()
    # ... or the claim (a list, e.g. groups) contains this value.
    contains: str = ""

    @model_validator(mode="after")
    def _one(self) -> AttributeRequirement:
        if bool(self.one_of) == bool(self.contains):
            raise ValueError("set exactly one of one_of or contains")
        return self


class OidcUserMapping(_Section):
    """Templates from claims to the account: "{claim}" with filters, e.g. "{email|localpart}"."""

    localpart: str = "{preferred_username}"
    display_name: str = "{name}"
    email: str = "{email}"
    organisation: str = ""


class OidcProviderConfig(_Section):
    """One [[oidc_providers]] entry: an OpenID provider users (and staff) sign in with."""

    id: str = Field(pattern=r"^[A-Za-z0-9._~-]{1,64}$")
    name: str
    brand: str = ""
    issuer: str  # discovery: {issuer}/.well-known/openid-configuration
    client_id: str
    client_secret: str = ""
    # PEM file (relative to the config file) for private_key_jwt; its key id goes in `kid`.
    client_private_key_path: str = ""
    client_private_key_kid: str = ""
    client_auth_method: Literal[
        "client_secret_basic", "client_secret_post", "private_key_jwt"
    ] = "client_secret_basic"
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    # Pushed authorization requests (RFC 9126), required by some sectoral IdPs (ePA).
    use_par: bool = False
    # Where the claims for the mapping come from: the ID token only, or merged with userinfo.
    claims_source: Literal["id_token", "userinfo"] = "userinfo"
    user_mapping: OidcUserMapping = OidcUserMapping()
    attribute_requirements: tuple[AttributeRequirement, ...] = ()
    # Refuse ID tokens whose authentication (auth_time, else iat) is older (TI-M: 86400).
    max_token_age_seconds: int | None = Field(default=None, ge=1)
    id_token_algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256")
    clock_skew_seconds: int = Field(default=60, ge=0, le=600)
    # If set, /login/sso/redirect accepts only redirectUrls starting with one of these.
    allowed_redirect_urls: tuple[str, ...] = ()
    # Display name follows the provider on every login (false: set once, at provisioning).
    update_display_name: bool = True
    # Staff SSO for the admin UI: provider groups -> the roles (audit/roles.py group names).
    staff_login: bool = False
    groups_claim: str = "groups"
    staff_roles: dict[str, tuple[str, ...]] = {}
    # TI-Messenger style token login (POST /login type org.matrix.login.jwt) with JWTs this
    # provider signs for `token_login_audience` (default: client_id).
    token_login: bool = False
    token_login_audience: str = ""
    token_login_types: tuple[str, ...] = ("JWT",)

    @field_validator("id_token_algorithms")
    @classmethod
    def _algs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                   "ES512"}
        bad = [a for a in v if a not in allowed]
        if bad or not v:  # never "none", never HMAC with a shared secret
            raise ValueError(f"expected asymmetric algorithms from {sorted(allowed)}")
        return v

    @field_validator("staff_roles")
    @classmethod
    def _roles(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        roles = ("Homeserver admin", "Compliance officer", "Auditor")  # audit/roles.py
        unknown = [r for r in v if r not in roles]
        if unknown:
            raise ValueError(f"unknown role {unknown[0]!r}; expected one of {', '.join(roles)}")
        return v

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("expected the issuer URL, e.g. https://login.example.org/realm")
        return v

    @model_validator(mode="after")
    def _auth(self) -> OidcProviderConfig:
        if self.client_auth_method == "private_key_jwt" and not self.client_private_key_path:
            raise ValueError("private_key_jwt needs client_private_key_path")
        if self.client_auth_method != "private_key_jwt" and not self.client_secret:
            raise ValueError(f"{self.client_auth_method} needs client_secret")
        if "openid" not in self.scopes:
            raise ValueError("scopes must include openid")
        return self


class SsoConfig(_Section):
    """[sso]: global settings of SSO login, the OAuth 2.0 API and admin SSO (docs/oidc.md)."""

    # m.login.password for Matrix clients. Unset: on, except for the TI-M profiles when an
    # OIDC provider is configured.
    password_login: bool | None = None
    # Local (password) sign-in to the admin UI; false leaves staff SSO only.
    admin_password_login: bool = True
    # redirectUrl prefixes trusted without the confirmation page.
    client_whitelist: tuple[str, ...] = ()
    login_token_lifetime_seconds: int = Field(default=30, ge=1, le=600)
    # How long a started sign-in may take at the provider.
    flow_lifetime_seconds: int = Field(default=900, ge=60, le=3600)
    # The Matrix OAuth 2.0 API (spec v1.15) with this server as authorization server.
    oauth2_enabled: bool = True
    # RSA key that signs the ID tokens of the OAuth 2.0 API; created on first use.
    oauth2_signing_key_path: str = "data/oauth2_signing.pem"


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
    media: MediaConfig = MediaConfig()
    compliance: ComplianceSection = ComplianceSection()
    directory: DirectoryConfig = DirectoryConfig()
    turn: TurnConfig = TurnConfig()
    openid: OpenIdConfig = OpenIdConfig()
    presence: PresenceConfig = PresenceConfig()
    push: PushConfig = PushConfig()
    oidc_providers: tuple[OidcProviderConfig, ...] = ()
    sso: SsoConfig = SsoConfig()
    federation: FederationConfig = FederationConfig()

    @field_validator("compliance_profile")
    @classmethod
    def _profile(cls, v: str) -> str:
        from compliance.profiles import PROFILE_NAMES

        if v not in PROFILE_NAMES:
            raise ValueError(f"unknown profile {v!r}; expected one of {', '.join(PROFILE_NAMES)}")
        return v

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
