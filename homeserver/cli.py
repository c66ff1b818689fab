"""`palisade`: the one command operators, tests, benchmarks and acceptance runs use.

    palisade init  [--config palisade.toml]              write a default config with fresh secrets
    palisade serve [--config palisade.toml] [--workers N] [--no-migrate]

`serve` creates the config (first run), the signing key and the database schema when absent,
then runs one uvicorn process group per configured listener, each with N worker processes, and
stops them all on SIGTERM/SIGINT. With one listener and Redis configured it becomes that uvicorn
process itself (exec) rather than waiting beside it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_CONFIG = "palisade.toml"

DEFAULT_CONFIG_TEXT = """\
# Palisade operator configuration. Every key is documented in docs/configuration.md;
# environment variables PALISADE__SECTION__KEY override any key.
server_name = "localhost:8008"
public_baseurl = "http://127.0.0.1:8008/"
signing_key_path = "data/signing.key"
registration_shared_secret = "{shared_secret}"
secret_key = "{secret_key}"
compliance_profile = "standard"
workers = 1

[database]
url = "sqlite:///data/palisade.sqlite3"

[redis]
url = ""   # empty: in-memory channel layer and eager tasks (embedded mode)

[[listeners]]
bind = "127.0.0.1"
port = 8008
resources = ["client", "federation"]

[registration]
enabled = false

[rooms]
default_version = "10"
"""


def write_default_config(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = DEFAULT_CONFIG_TEXT.format(
        shared_secret=secrets.token_urlsafe(32), secret_key=secrets.token_urlsafe(50)
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _prepare(config_path: Path) -> None:
    os.environ["PALISADE_CONFIG"] = str(config_path.resolve())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homeserver.settings")


def _setup_django(migrate: bool) -> object:
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
    from homeserver.services.signing_keys import server_signing_key

    server_signing_key()
    from homeserver.services.startup import record_config_loaded

    record_config_loaded()
    from django.db import connections

    # The supervisor only waits for its workers: hold no connection (nor a pool) meanwhile.
    for conn in connections.all(initialized_only=True):
        conn.close_pool() if hasattr(conn, "close_pool") else conn.close()
    return settings.PALISADE


def _listener_command(listener: object, workers: int) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "homeserver.asgi:application",
        "--host",
        listener.bind,
        "--port",
        str(listener.port),  # type: ignore[attr-defined]
        "--workers",
        str(workers),
        "--no-access-log",
        "--lifespan",
        "off",
        "--timeout-graceful-shutdown",
        "5",
    ]
    if listener.tls_certificate:  # type: ignore[attr-defined]
        cmd += [
            "--ssl-certfile",
            listener.tls_certificate,  # type: ignore[attr-defined]
            "--ssl-keyfile",
            listener.tls_private_key,
        ]  # type: ignore[attr-defined]
    return cmd


def _announce(listener: object, workers: int) -> None:
    scheme = "https" if listener.tls_certificate else "http"  # type: ignore[attr-defined]
    print(
        f"palisade: {'+'.join(listener.resources)} API on "  # type: ignore[attr-defined]
        f"{scheme}://{listener.bind}:{listener.port} ({workers} workers)",  # type: ignore[attr-defined]
        flush=True,
    )


def serve(args: argparse.Namespace) -> int:
    config_path = Path(args.config)
    if not config_path.exists():
        if args.config != DEFAULT_CONFIG and not args.create:
            print(f"palisade: configuration file {config_path} does not exist", file=sys.stderr)
            return 2
        write_default_config(config_path)
        print(f"palisade: wrote a new configuration to {config_path}")
    _prepare(config_path)
    config = _setup_django(migrate=not args.no_migrate)
    from homeserver.services.background import tasks_run_in_process
    from homeserver.services.federation.sender import resume_embedded

    resume_embedded()  # embedded mode: what an earlier run left in the outbound queue
    workers = args.workers or config.workers  # type: ignore[attr-defined]
    listeners = config.listeners  # type: ignore[attr-defined]
    if len(listeners) == 1 and not tasks_run_in_process():
        # One listener and Celery does the background work: nothing is left for this process
        # to do but wait, so it becomes the server (uvicorn, which stops on SIGTERM/SIGINT by
        # itself) instead of keeping a second copy of Django in memory. In embedded mode it
        # stays: it runs the federation sweeper that no Celery worker runs there.
        listener = listeners[0]
        cmd = _listener_command(listener, workers)
        _announce(listener, workers)
        env = dict(os.environ, PALISADE_LISTENER_RESOURCES=",".join(listener.resources))
        os.execve(cmd[0], cmd, env)  # noqa: S606 - our own interpreter, argv built above
    procs: list[subprocess.Popen[bytes]] = []
    for listener in listeners:
        env = dict(os.environ, PALISADE_LISTENER_RESOURCES=",".join(listener.resources))
        procs.append(subprocess.Popen(_listener_command(listener, workers), env=env))
        _announce(listener, workers)

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(0.2)
    stop(signal.SIGTERM, None)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    return 0 if stopping else 1


def init(args: argparse.Namespace) -> int:
    path = Path(args.config)
    if path.exists():
        print(f"palisade: {path} already exists; not overwriting", file=sys.stderr)
        return 1
    write_default_config(path)
    print(f"palisade: wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="palisade")
    sub = parser.add_subparsers(dest="command", required=True)
    default_config = os.environ.get("PALISADE_CONFIG", DEFAULT_CONFIG)
    p_serve = sub.add_parser("serve", help="run the homeserver")
    p_serve.add_argument("--config", default=default_config)
    p_serve.add_argument("--workers", type=int, default=0, help="worker processes per listener")
    p_serve.add_argument("--no-migrate", action="store_true")
    p_serve.add_argument(
        "--create",
        action="store_true",
        help="write a default config at --config when it does not exist",
    )
    p_serve.set_defaults(func=serve)
    p_init = sub.add_parser("init", help="write a default configuration file")
    p_init.add_argument("--config", default=default_config)
    p_init.set_defaults(func=init)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
