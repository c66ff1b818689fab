"""Profiles: configuration (unknown names and bad overrides are errors naming the key), the
effective settings, and which policies each profile registers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from compliance.hooks import Hook, _registry
from compliance.profiles import (
    MEGOLM,
    PROFILE_NAMES,
    PROFILES,
    active_profile,
    effective_settings,
)
from homeserver.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "palisade.toml"
    p.write_text(text)
    return p


def test_profile_names():
    assert PROFILE_NAMES == ("standard", "strict", "bwmessenger", "ti-m-basis", "ti-m-pro",
                             "ti-m-epa")
    assert load_config(None, {}).compliance_profile == "standard"


def test_unknown_profile_is_a_config_error_naming_key_and_choices(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, 'compliance_profile = "ti-m-premium"\n'), {})
    msg = str(e.value)
    assert "compliance_profile" in msg and "ti-m-premium" in msg
    assert all(name in msg for name in PROFILE_NAMES)


def test_manage_py_refuses_to_start_with_an_unknown_profile():
    env = {"PATH": "/usr/bin:/bin", "PALISADE__COMPLIANCE_PROFILE": "nope"}
    r = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "compliance_profile: unknown profile 'nope'" in r.stderr
    assert "Traceback" not in r.stderr


def test_overrides_from_file_and_environment(tmp_path):
    p = write(tmp_path, 'compliance_profile = "ti-m-pro"\n[compliance]\n'
                        'cleartext_allowlist = ["m.room.redaction"]\n')
    cfg = load_config(p, {"PALISADE__COMPLIANCE__MISSING_ENCRYPTION": "refuse",
                          "PALISADE__COMPLIANCE__REDACTION_WINDOW_HOURS": "48"})
    s = effective_settings(cfg.compliance_profile, cfg.compliance)
    assert s.missing_encryption == "refuse" and s.redaction_window_hours == 48
    assert s.cleartext_allowlist == ("m.room.redaction",)
    assert s.max_invites_on_create == 1  # not overridable: the profile's value


@pytest.mark.parametrize(("text", "key"), [
    ('[compliance]\nmissing_encryption = "sometimes"\n', "compliance.missing_encryption"),
    ("[compliance]\nredaction_window_hours = -1\n", "compliance.redaction_window_hours"),
    ("[compliance]\nforbid_threads = false\n", "compliance.forbid_threads"),
])
def test_bad_overrides_name_their_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), {})
    assert key in str(e.value)


def test_window_override_zero_switches_it_off():
    assert effective_settings("ti-m-pro", {"redaction_window_hours": 0}) \
        .redaction_window_hours is None
    assert effective_settings("ti-m-pro", {}) == PROFILES["ti-m-pro"]


def test_which_profiles_are_e2ee_only():
    assert {n for n, s in PROFILES.items() if s.e2ee_only} == set(PROFILE_NAMES) - {"standard"}
    assert PROFILES["strict"].missing_encryption == "refuse"
    assert PROFILES["ti-m-pro"].missing_encryption == "add"
    assert PROFILES["ti-m-epa"].forbidden_join_rules == ("public", "knock", "restricted",
                                                         "knock_restricted")
    assert PROFILES["ti-m-pro"].allowed_create_room_versions == ("9", "10")


def test_the_configured_profile_is_active_at_start(settings):
    active = active_profile()
    assert active.name == settings.PALISADE.compliance_profile
    assert active.settings == effective_settings(active.name, settings.PALISADE.compliance)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_each_profile_registers_its_policies_and_nothing_lingers(use_profile, name):
    active = use_profile(name)
    registered = {(str(hook), p.__module__.rsplit(".", 1)[-1] + "." + p.__name__)
                  for hook, policies in _registry.items() for p in policies}
    # The federation allow-list is registered under every profile, beside the profile's own.
    always = {("federation_request", "federation_access.federation_request_policy")}
    assert registered == {tuple(p.split(": ")) for p in active.policies} | always
    e2ee = {p for p in active.policies if "e2ee_only." in p}
    if name == "standard":
        assert active.policies == ()
    else:
        assert e2ee == {"room_create: e2ee_only.room_create",
                        "client_send: e2ee_only.client_send",
                        "federation_pdu: e2ee_only.federation_pdu",
                        "join_remote_room: e2ee_only.join_remote_room"}
    # Room rules decide before E2EE-only, which decides before the message rules.
    order = [p.split(": ")[1].split(".")[0] for p in active.policies
             if p.startswith(str(Hook.CLIENT_SEND))]
    assert order == sorted(order, key=["room_rules", "e2ee_only", "message_rules"].index)
    assert MEGOLM == "m.megolm.v1.aes-sha2"
