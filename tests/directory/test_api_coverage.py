"""scripts/api_coverage.py: the spec's endpoint list, resolved against our URL configuration,
and the committed docs/api-coverage.md listing every one of them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("api_coverage", REPO / "scripts/api_coverage.py")
api_coverage = importlib.util.module_from_spec(spec)
sys.modules["api_coverage"] = api_coverage
spec.loader.exec_module(api_coverage)

pytestmark = pytest.mark.skipif(not (api_coverage.DEFAULT_SPEC / "data").exists(),
                                reason="needs the Matrix spec checkout")

THIS_FEATURE = {
    ("PUT", "/_matrix/client/v3/directory/room/{roomAlias}"),
    ("GET", "/_matrix/client/v3/directory/room/{roomAlias}"),
    ("DELETE", "/_matrix/client/v3/directory/room/{roomAlias}"),
    ("GET", "/_matrix/client/v3/rooms/{roomId}/aliases"),
    ("GET", "/_matrix/client/v3/directory/list/room/{roomId}"),
    ("PUT", "/_matrix/client/v3/directory/list/room/{roomId}"),
    ("GET", "/_matrix/client/v3/publicRooms"),
    ("POST", "/_matrix/client/v3/publicRooms"),
    ("POST", "/_matrix/client/v3/user_directory/search"),
    ("POST", "/_matrix/client/v3/rooms/{roomId}/upgrade"),
    ("GET", "/_matrix/client/v3/user/{userId}/rooms/{roomId}/tags"),
    ("PUT", "/_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}"),
    ("DELETE", "/_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}"),
    ("GET", "/_matrix/client/v1/rooms/{roomId}/timestamp_to_event"),
    ("GET", "/_matrix/client/v3/voip/turnServer"),
    ("POST", "/_matrix/client/v3/user/{userId}/openid/request_token"),
}


@pytest.fixture(scope="module")
def endpoints():
    return api_coverage.load_endpoints(api_coverage.DEFAULT_SPEC)


def test_every_spec_file_is_walked(endpoints):
    files = {p.name for p in (api_coverage.DEFAULT_SPEC / "data/api/client-server").glob("*.yaml")}
    with_paths = {ep.spec_file for ep in endpoints}
    assert len(endpoints) > 150
    assert with_paths <= files and len(with_paths) > 60


def test_statuses(endpoints):
    by_key = {(ep.method, ep.template): api_coverage.status_of(ep)[0] for ep in endpoints
              if ep.spec_file != "third_party_membership.yaml"}
    for key in THIS_FEATURE:
        assert by_key[key] == "implemented", key
    assert by_key[("POST", "/_matrix/client/v3/account/3pid/add")] == "refused"
    # A route we have with a method we do not: the method decides.
    assert by_key[("POST", "/_matrix/client/v3/createRoom")] == "implemented"


def test_committed_table_lists_every_endpoint(endpoints):
    text = (REPO / "docs/api-coverage.md").read_text(encoding="utf-8")
    for ep in endpoints:
        assert f"| {ep.method} | `{ep.template}`" in text, (ep.method, ep.template)
    for key in THIS_FEATURE:
        assert f"| {key[0]} | `{key[1]}` | implemented |" in text, key
