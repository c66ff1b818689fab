"""[database] pool_*: PostgreSQL gets a bounded connection pool per process (Django's native psycopg
pool); a parked /sync long-poll gives its connection back."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from homeserver import settings as project_settings
from homeserver.config import load_config
from homeserver.storage.stream import release_connection


def databases(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, extra: str = "") -> dict:
    path = tmp_path / "palisade.toml"
    path.write_text(f'[database]\nurl = "postgresql://p@db:5432/palisade"\n{extra}')
    monkeypatch.setattr(project_settings, "PALISADE", load_config(path, {}))
    return project_settings._databases()["default"]


def test_postgres_gets_a_bounded_pool_by_default(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Any) -> None:
    db = databases(monkeypatch, tmp_path)
    assert db["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 10, "timeout": 10.0}
    assert db["CONN_MAX_AGE"] == 0  # Django refuses persistent connections with a pool


def test_pool_size_is_configurable_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Any) -> None:
    db = databases(monkeypatch, tmp_path, "pool_max_size = 4\npool_min_size = 9\n")
    assert db["OPTIONS"]["pool"] == {"min_size": 4, "max_size": 4, "timeout": 10.0}
    db = databases(monkeypatch, tmp_path, "pool_max_size = 0\nconn_max_age = 30\n")
    assert "pool" not in db.get("OPTIONS", {}) and db["CONN_MAX_AGE"] == 30


def test_a_pool_too_small_for_the_database_threads_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Any) -> None:
    from homeserver.config import ConfigError

    with pytest.raises(ConfigError, match="pool_max_size"):
        databases(monkeypatch, tmp_path, "pool_max_size = 2\n")
    assert databases(monkeypatch, tmp_path, "pool_max_size = 3\n")["OPTIONS"]["pool"][
        "max_size"] == 3


@pytest.mark.django_db(transaction=True)
def test_release_connection_gives_the_connection_back() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    pooled = bool(connection.settings_dict["OPTIONS"].get("pool"))
    release_connection()
    assert (connection.connection is None) == pooled
    with connection.cursor() as cursor:  # and the next query simply takes one again
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
