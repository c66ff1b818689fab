"""Operator configuration: defaults, TOML, environment overrides, and errors an operator can act on."""

from __future__ import annotations

import pytest

from homeserver.config import ConfigError, load_config


def write(tmp_path, text: str):
    p = tmp_path / "palisade.toml"
    p.write_text(text)
    return p


def test_defaults_are_the_embedded_setup():
    cfg = load_config(None, environ={})
    assert cfg.database.url.startswith("sqlite:///")
    assert cfg.redis.url == ""
    assert cfg.rooms.default_version == "10"
    assert cfg.listeners[0].port == 8008


def test_file_values_and_frozen_objects(tmp_path):
    cfg = load_config(write(tmp_path, 'server_name = "hospital.example"\n'
                                      '[database]\nurl = "postgresql://p@db/palisade"\n'), {})
    assert cfg.server_name == "hospital.example"
    assert cfg.database.is_postgres
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type
        cfg.server_name = "other"  # type: ignore[misc]


def test_env_overrides_beat_the_file(tmp_path):
    p = write(tmp_path, '[rate_limits]\nenabled = true\n')
    cfg = load_config(p, {"PALISADE__RATE_LIMITS__ENABLED": "false",
                          "PALISADE_REDIS_URL": "redis://127.0.0.1:6379/1",
                          "PALISADE__ROOMS__DEFAULT_VERSION": '"11"'})
    assert cfg.rate_limits.enabled is False
    assert cfg.redis.url == "redis://127.0.0.1:6379/1"
    assert cfg.rooms.default_version == "11"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[database]\nurl = "mysql://x"\n', "database.url: expected sqlite:///"),
        ('server_name = "bad name!"\n', "server_name: expected a server name"),
        ('[rooms]\ndefault_version = "99"\n', "rooms.default_version: expected one of"),
        ('workers = 0\n', "workers:"),
        ('colour = "blue"\n', "colour: unknown key"),
        ('[[listeners]]\nport = 70000\n', "listeners.0.port:"),
        ("server_name = \n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key_and_the_expected_form(tmp_path, text, expected):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), {})
    assert expected in str(e.value)
    assert "Traceback" not in str(e.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", {})


def test_fingerprint_changes_with_the_config(tmp_path):
    a = load_config(None, {})
    b = load_config(None, {"PALISADE_SERVER_NAME": "other.example"})
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == load_config(None, {}).fingerprint()
