"""Write a Synapse config for the load bench. Runs under the Synapse virtualenv's python (it needs
synapse and PyYAML), called by run.py:

    SYNAPSE_VENV/bin/python bench/load/synapse_conf.py --dir D --port P --db NAME --secret S

Generates the stock config with `synapse.app.homeserver --generate-config`, then changes only
what the bench needs: PostgreSQL, one plain-HTTP client listener on 127.0.0.1, the shared
registration secret, rate limits out of the way, no stats reporting, no federation traffic, no
/sync response cache (the bench repeats identical initial syncs), presence off unless
--presence (run.py passes it by default: both servers keep presence on), and WARNING-level
logging (Palisade runs without an access log). Prints the config path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import yaml

UNLIMITED = {"per_second": 100000, "burst_count": 1000000}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-user", default="postgres")
    p.add_argument("--pg-password", default="")
    p.add_argument("--presence", action="store_true")
    p.add_argument("--log-level", default="WARNING")
    a = p.parse_args()

    d = os.path.abspath(a.dir)
    os.makedirs(d, exist_ok=True)
    server_name = f"127.0.0.1:{a.port}"
    cfg_path = os.path.join(d, "homeserver.yaml")
    subprocess.run(
        [sys.executable, "-m", "synapse.app.homeserver", "--server-name", server_name,
         "--config-path", cfg_path, "--data-directory", d, "--generate-config",
         "--report-stats=no"],
        check=True, stdout=subprocess.DEVNULL, cwd=d,
    )
    with open(cfg_path) as f:
        cfg = yaml.safe_load(f)

    db_args = {"user": a.pg_user, "database": a.db, "host": a.pg_host, "port": a.pg_port,
               "cp_min": 5, "cp_max": 10}
    if a.pg_password:
        db_args["password"] = a.pg_password
    cfg.update({
        "public_baseurl": f"http://127.0.0.1:{a.port}/",
        "report_stats": False,
        "enable_metrics": False,
        "listeners": [{
            "port": a.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
            "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}],
        }],
        "database": {"name": "psycopg2", "args": db_args},
        "registration_shared_secret": a.secret,
        "enable_registration": False,
        # No federation in this bench: never fetch keys from matrix.org, send to nobody.
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "url_preview_enabled": False,
        # Identical repeated initial syncs must be computed, not served from the response cache.
        "caches": {**(cfg.get("caches") or {}), "sync_response_cache_duration": 0},
        "rc_message": UNLIMITED,
        "rc_registration": UNLIMITED,
        "rc_login": {"address": UNLIMITED, "account": UNLIMITED, "failed_attempts": UNLIMITED},
        "rc_joins": {"local": UNLIMITED, "remote": UNLIMITED},
        "rc_joins_per_room": UNLIMITED,
        "rc_invites": {"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED},
        "rc_room_creation": UNLIMITED,
        "rc_admin_redaction": UNLIMITED,
        "rc_key_requests": UNLIMITED,
        "rc_presence": {"per_user": UNLIMITED},
        "rc_profile": UNLIMITED,
        "rc_user_directory": UNLIMITED,
        "rc_delayed_event_mgmt": UNLIMITED,
        "rc_3pid_validation": UNLIMITED,
    })
    if not a.presence:
        cfg["presence"] = {"enabled": False}
    with open(cfg_path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)

    log_config = cfg.get("log_config")
    if log_config and os.path.exists(log_config):
        with open(log_config) as f:
            lc = yaml.safe_load(f)
        lc.setdefault("root", {})["level"] = a.log_level
        for name in ("synapse.storage.SQL", "synapse.access.http"):
            lc.setdefault("loggers", {}).setdefault(name, {})["level"] = a.log_level
        with open(log_config, "w") as f:
            yaml.safe_dump(lc, f, sort_keys=False)
    print(cfg_path)


if __name__ == "__main__":
    main()
