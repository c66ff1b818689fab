"""The shipped example configuration must always load."""

from pathlib import Path

from homeserver.config import load_config


def test_example_config_is_valid():
    cfg = load_config(Path(__file__).resolve().parent.parent / "palisade.example.toml", {})
    assert cfg.database.is_postgres
    assert [lst.resources for lst in cfg.listeners] == [("client",), ("federation",)]
