#!/usr/bin/env python
"""Which client-server API endpoints of the Matrix spec this server serves.

Walks every OpenAPI file under data/api/client-server/ of the spec checkout, builds each
endpoint's path with the spec's example values (or a plausible identifier), resolves it with
Django's URL configuration and checks the resolved view accepts the method. Writes the table to
docs/api-coverage.md, so the table is whatever the code routes today, not what someone
remembered to write down.

    .venv/bin/python scripts/api_coverage.py            # rewrite docs/api-coverage.md
    .venv/bin/python scripts/api_coverage.py --check    # exit 1 if the file is out of date

Statuses: "implemented" (routed, method accepted), "refused" (deliberately not offered; the
reason is in REFUSED below), "not yet". NOTES adds context, e.g. what a compliance profile
switches off on an implemented endpoint.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO.parent / "shared" / "matrix-spec"
OUTPUT = REPO / "docs" / "api-coverage.md"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader if built
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# Identifiers for path parameters the spec gives no usable example for.
FALLBACK_VALUES = {
    "roomId": "!room:example.org",
    "roomIdOrAlias": "!room:example.org",
    "roomAlias": "#alias:example.org",
    "userId": "@alice:example.org",
    "eventId": "$event:example.org",
    "eventType": "m.room.message",
    "serverName": "example.org",
    "mediaId": "media",
}

_3PID = ("this server keeps no third-party identifiers (email addresses, phone numbers): people "
         "log in with their Matrix ID or the organisation's OIDC identity provider, and the "
         "m.3pid_changes capability is off")
# operationId -> why the endpoint is deliberately not offered.
REFUSED = {
    "getAccount3PIDs": _3PID,
    "post3PIDs": _3PID,
    "add3PID": _3PID,
    "bind3PID": _3PID,
    "delete3pidFromAccount": _3PID,
    "unbind3pidFromAccount": _3PID,
    "requestTokenTo3PIDEmail": _3PID,
    "requestTokenTo3PIDMSISDN": _3PID,
    "requestTokenToRegisterEmail": _3PID,
    "requestTokenToRegisterMSISDN": _3PID,
    "requestTokenToResetPasswordEmail": _3PID,
    "requestTokenToResetPasswordMSISDN": _3PID,
    # The same route as an invite by user ID, which is implemented; this body form is not.
    "inviteBy3PID": _3PID,
}
# operationId -> context shown next to the status.
NOTES = {
    "getPublicRooms": "`[directory] public_rooms_enabled = false` (ePA) answers 403; asks for "
                      "a token unless `public_rooms_require_auth = false`; `server=` another "
                      "server: 404 until federation",
    "queryPublicRooms": "`[directory] public_rooms_enabled = false` (ePA) answers 403",
    "setRoomVisibilityOnDirectory": "publishing refused (403) when the directory is off (ePA)",
    "searchUserDirectory": "`[directory] search_all_public_members = false` (ePA): only users "
                           "sharing a room",
    "getRoomIdByAlias": "other servers' aliases: 404 until federation",
    "getTurnServer": "`{}` unless `[turn]` is configured",
    "getEventByTimestamp": "local events only until federation",
    "upgradeRoom": "joined members are invited to the new room, bans copied",
}


@dataclass(frozen=True)
class Endpoint:
    spec_file: str
    method: str
    template: str  # full path with {params}
    operation_id: str
    deprecated: bool
    example_path: str


def _base_path(doc: dict) -> str:
    servers = doc.get("servers") or [{}]
    return servers[0].get("variables", {}).get("basePath", {}).get("default", "")


def _example(param: dict) -> str:
    value = param.get("example", param.get("schema", {}).get("example"))
    if value is None or value == "":
        value = FALLBACK_VALUES.get(param["name"], "x")
    return str(value)


def load_endpoints(spec_dir: Path) -> list[Endpoint]:
    out = []
    for f in sorted((spec_dir / "data" / "api" / "client-server").glob("*.yaml")):
        doc = yaml.load(f.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - safe loaders
        base = _base_path(doc)
        for raw_path, item in (doc.get("paths") or {}).items():
            shared = item.get("parameters", [])
            for method in METHODS:
                op = item.get(method)
                if op is None:
                    continue
                params = [p for p in shared + op.get("parameters", []) if p.get("in") == "path"]
                values = {p["name"]: _example(p) for p in params}
                # The spec disambiguates two descriptions of one path with a trailing space.
                template = raw_path.strip()
                path = re.sub(r"\{(\w+)\}", lambda m, v=values: v.get(m.group(1), "x"), template)
                out.append(Endpoint(f.name, method.upper(), base + template,
                                    op.get("operationId", ""), bool(op.get("deprecated")),
                                    base + path))
    return out


def accepted_methods(func) -> set[str] | None:
    """Methods a `homeserver.api.routing.methods(...)` view accepts (None: not such a view)."""
    view = inspect.unwrap(func)
    try:
        allowed = inspect.getclosurevars(view).nonlocals.get("allowed")
    except TypeError:
        return None
    return set(allowed) if isinstance(allowed, dict) else None


def status_of(ep: Endpoint) -> tuple[str, str]:
    from django.urls import Resolver404, resolve

    note = NOTES.get(ep.operation_id, "")
    if ep.operation_id in REFUSED:
        return "refused", REFUSED[ep.operation_id]
    try:
        match = resolve(ep.example_path)
    except Resolver404:
        return "not yet", note
    allowed = accepted_methods(match.func)
    if allowed is not None and ep.method not in allowed:
        return "not yet", note
    return "implemented", note


def render(endpoints: list[Endpoint]) -> str:
    rows = [(ep, *status_of(ep)) for ep in endpoints]
    counts = {s: sum(1 for _, st, _ in rows if st == s)
              for s in ("implemented", "refused", "not yet")}
    lines = [
        "# Client-server API coverage",
        "",
        "Generated by `scripts/api_coverage.py` from the OpenAPI files in the Matrix spec "
        "(`data/api/client-server/`): each endpoint's path, filled in with the spec's example "
        "values, is resolved with Django's URL configuration and the view's accepted methods "
        "are checked. Do not edit by hand; run the script after adding routes "
        "(`--check` fails when this file is out of date).",
        "",
        f"**{len(rows)} endpoints**: {counts['implemented']} implemented, "
        f"{counts['refused']} refused by design, {counts['not yet']} not yet.",
        "",
        "| Method | Path | Status | Notes | Spec file |",
        "|---|---|---|---|---|",
    ]
    for ep, st, note in sorted(rows, key=lambda r: (r[0].template, r[0].method)):
        dep = " (deprecated)" if ep.deprecated else ""
        lines.append(f"| {ep.method} | `{ep.template}`{dep} | {st} | {note} | {ep.spec_file} |")
    lines += [
        "",
        "Outside the client-server API this feature also serves the server-server "
        "`GET /_matrix/federation/v1/openid/userinfo` (OpenID tokens only, never access "
        "tokens: A_25479).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homeserver.settings")
    import django

    django.setup()
    text = render(load_endpoints(args.spec))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run scripts/api_coverage.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
