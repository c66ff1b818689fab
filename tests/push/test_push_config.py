"""The [push] and [presence] configuration sections: defaults, environment overrides, and
errors that name the key."""

from __future__ import annotations

import pytest

from homeserver.config import ConfigError, load_config


def test_defaults_and_profile_dependent_content():
    cfg = load_config(None, {})
    assert cfg.presence.enabled is True and cfg.push.include_content is None
    assert cfg.push.include_content_for(cfg.compliance_profile) is True  # standard
    assert cfg.push.allow_http_gateways is False and cfg.push.celery_queue == "celery"
    env = {"PALISADE__PUSH__INCLUDE_CONTENT": "false", "PALISADE__PRESENCE__ENABLED": "false"}
    cfg = load_config(None, env)
    assert cfg.push.include_content_for("standard") is False and cfg.presence.enabled is False


@pytest.mark.parametrize("env,key", [
    ({"PALISADE__PUSH__MAX_ATTEMPTS": "0"}, "push.max_attempts"),
    ({"PALISADE__PUSH__INCLUDE_CONTENT": "sometimes"}, "push.include_content"),
    ({"PALISADE__PRESENCE__IDLE_AFTER_SECONDS": "1"}, "presence.idle_after_seconds"),
    ({"PALISADE__PUSH__GATEWAY_URL": "x"}, "push.gateway_url"),
])
def test_bad_values_name_the_key(env, key):
    with pytest.raises(ConfigError) as e:
        load_config(None, env)
    assert key in str(e.value)
