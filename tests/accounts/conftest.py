"""Fixtures for the accounts tests: a test configuration (registration on, rate limits off unless
a test turns them on, fast password hashing), an async client, and user/login helpers."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.db import connections
from django.db.models import Max
from django.test import AsyncClient
from pydantic import BaseModel

from audit.actions import ActorType
from audit.models import AuditRecord
from homeserver.models import StreamCounter
from homeserver.services.accounts.register import create_user

SHARED_SECRET = "test-shared-secret"
PASSWORD = "correct horse battery staple"
V3 = "/_matrix/client/v3"

_counter = itertools.count()


def _merge(model: BaseModel, changes: dict[str, Any]) -> BaseModel:
    update = {}
    for name, value in changes.items():
        current = getattr(model, name)
        if isinstance(value, dict) and isinstance(current, BaseModel):
            value = _merge(current, value)
        update[name] = value
    return model.model_copy(update=update)


def configure(settings: Any, **changes: Any) -> None:
    """Replace parts of settings.PALISADE, e.g. configure(settings, rate_limits={"enabled": True})."""
    settings.PALISADE = _merge(settings.PALISADE, changes)


@pytest.fixture(autouse=True)
def accounts_settings(settings):
    configure(
        settings,
        rate_limits={"enabled": False},
        registration={"enabled": True, "require_token": False},
        registration_shared_secret=SHARED_SECRET,
    )
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@pytest.fixture(autouse=True)
def stream_counter_row(request):
    """Transactional tests flush every table after each test, including the row the data
    migration creates; put it back."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if transactional else "db")
    StreamCounter.objects.get_or_create(name="main")


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """Views run ORM code in asgiref's worker thread, whose connection would outlive the test
    (and keep PostgreSQL from dropping the test database at the end)."""
    yield
    await sync_to_async(connections.close_all)()


def server_name() -> str:
    return django_settings.PALISADE.server_name


def unique_localpart(prefix: str = "user") -> str:
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:8]}"


def make_user(localpart: str | None = None, *, password: str = PASSWORD,
              admin: bool = False) -> str:
    user_id, _ = create_user(localpart or unique_localpart(), password=password, is_admin=admin,
                             actor="tests", actor_type=ActorType.SYSTEM, method="tests")
    return user_id


amake_user = sync_to_async(make_user)


def audit_head() -> int:
    return AuditRecord.objects.aggregate(m=Max("seq"))["m"] or 0


def audit_since(seq: int) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(seq__gt=seq).order_by("seq"))


aaudit_head = sync_to_async(audit_head)
aaudit_since = sync_to_async(audit_since)


class ClientAt(AsyncClient):
    """An AsyncClient whose requests come from `ip` (rate limits are keyed by address)."""

    def __init__(self, ip: str = "127.0.0.1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ip = ip

    def _base_scope(self, **request: Any) -> dict:
        scope = super()._base_scope(**request)
        scope["client"] = [self.ip, 0]
        return scope


def random_ip() -> str:
    b = uuid.uuid4().bytes
    return f"10.{b[0]}.{b[1]}.{b[2] or 1}"


class Api:
    """Thin JSON helpers over Django's AsyncClient."""

    def __init__(self, client: AsyncClient | None = None) -> None:
        self.client = client or ClientAt()

    async def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                   raw: bytes | None = None, **extra: Any):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else b"")
        fn = getattr(self.client, method.lower())
        url = path if path.startswith("/_") else V3 + path
        if method.upper() in ("GET", "HEAD"):
            return await fn(url, headers=headers, **extra)
        return await fn(url, data=data, content_type="application/json", headers=headers,
                        **extra)

    async def login(self, user: str, password: str = PASSWORD, **fields: Any) -> dict:
        resp = await self.call("POST", "/login", {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password, **fields,
        })
        assert resp.status_code == 200, resp.json()
        return resp.json()


@pytest.fixture
def api() -> Api:
    return Api()
