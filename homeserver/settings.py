"""Django settings, derived from the operator configuration (homeserver/config.py).

Nothing here is meant to be edited per deployment: operators edit the TOML file named by
PALISADE_CONFIG (or pass --config to `palisade serve`) and environment overrides.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

import dj_database_url

from homeserver.config import ConfigError, config_path_from_env, load_config

BASE_DIR = Path(__file__).resolve().parent.parent

try:
    PALISADE = load_config(config_path_from_env())
except ConfigError as _e:
    # A readable message, not a traceback (settings import happens before logging exists).
    print(f"palisade: {_e}", file=sys.stderr)
    raise SystemExit(2) from None

_config_file = config_path_from_env()
CONFIG_DIR = Path(_config_file).resolve().parent if _config_file else Path.cwd()


def data_path(p: str) -> Path:
    """Relative paths in the config are relative to the config file's directory."""
    path = Path(p)
    return path if path.is_absolute() else CONFIG_DIR / path


def _secret_key() -> str:
    if PALISADE.secret_key:
        return PALISADE.secret_key
    # Embedded default: a random key kept beside the signing key, created on first start.
    key_file = data_path(PALISADE.signing_key_path).with_name("django_secret_key")
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(50)
        key_file.write_text(value)
        key_file.chmod(0o600)
        return value


SECRET_KEY = _secret_key()
DEBUG = PALISADE.debug
ALLOWED_HOSTS = ["*"]  # The Matrix APIs are addressed by server name; nginx pins the Host.

INSTALLED_APPS = [
    # audit before the admin: its admin/base_site.html (branding) must win the template lookup.
    "audit",
    "audit.apps.PalisadeAdminConfig",  # django.contrib.admin with the audited site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "compliance",
    "idp",
    "homeserver",
]

MIDDLEWARE = [
    "audit.middleware.AuditContextMiddleware",  # request id + source address for audit
    "homeserver.api.middleware.MatrixMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "homeserver.urls"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "homeserver.asgi.application"


def _databases() -> dict:
    url = PALISADE.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = f"sqlite:///{data_path(url.removeprefix('sqlite:///'))}"
    db = dj_database_url.parse(url, conn_max_age=PALISADE.database.conn_max_age)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        db["OPTIONS"] = {
            # WAL + a busy timeout let the embedded server's readers and one writer coexist.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
        }
        db["CONN_MAX_AGE"] = 0
        # Tests use a file, not shared-cache memory, so concurrent-writer tests see real locking.
        db["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"palisade-test-{os.getpid()}.db")}
    else:
        db["CONN_HEALTH_CHECKS"] = True
        cfg = PALISADE.database
        if cfg.pool_max_size > 0:
            # Database pool: a bounded psycopg pool per process. Django takes a connection from
            # it when a request (thread) first queries and gives it back when the request ends
            # (connection.close()), so load can never open more than pool_max_size connections
            # per process, and requests stop paying a new PostgreSQL backend each. Pooling
            # requires CONN_MAX_AGE = 0; health checks are the pool's job then.
            db["CONN_MAX_AGE"] = 0
            db["CONN_HEALTH_CHECKS"] = False
            db.setdefault("OPTIONS", {})["pool"] = {
                "min_size": min(cfg.pool_min_size, cfg.pool_max_size),
                "max_size": cfg.pool_max_size,
                "timeout": cfg.pool_timeout,
            }
    return {"default": db}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if PALISADE.redis.url:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [PALISADE.redis.url]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": PALISADE.redis.url,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: a Redis broker in production; without Redis, tasks run eagerly in-process.
CELERY_BROKER_URL = PALISADE.redis.url or "memory://"
CELERY_TASK_ALWAYS_EAGER = not PALISADE.redis.url
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = data_path("data/static")

DATA_UPLOAD_MAX_MEMORY_SIZE = 100 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Hardening that matters only behind TLS; `manage.py check --deploy` reports the rest.
SESSION_COOKIE_SECURE = PALISADE.public_baseurl.startswith("https://")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
