"""Push tests: the shared client-API fixtures, settings that let pushers point at a plain-http
loopback gateway with short retry backoff, a real gateway per test, and — when Redis is
configured, so Celery tasks are not run in-process — a real Celery worker process consuming
this session's own queue from the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.accounts.conftest import (  # noqa: F401 - fixtures are registered by import
    accounts_settings,
    api,
    close_thread_connections,
    configure,
    stream_counter_row,
)
from tests.push.gateway import Gateway

QUEUE = f"palisade-test-push-{uuid.uuid4().hex[:10]}"
PUSH_TEST_SETTINGS = {
    "allow_http_gateways": True,
    "backoff_initial_seconds": 0.05,
    "backoff_max_seconds": 0.2,
    "celery_queue": QUEUE,
}
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def push_settings(settings):
    configure(settings, push=PUSH_TEST_SETTINGS)


@pytest.fixture
def gateway():
    g = Gateway()
    yield g
    g.stop()


def worker_env(database_url: str, redis_url: str, queue: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE")}
    env.update({
        "PALISADE_DATABASE_URL": database_url, "PALISADE_REDIS_URL": redis_url,
        "PALISADE__PUSH__CELERY_QUEUE": queue,
        "PALISADE__PUSH__BACKOFF_INITIAL_SECONDS": "0.05",
        "PALISADE__PUSH__BACKOFF_MAX_SECONDS": "0.2",
        "DJANGO_SETTINGS_MODULE": "homeserver.settings", "PYTHONUNBUFFERED": "1", **extra,
    })
    return env


def start_worker(env: dict[str, str], queue: str, log_path: Path) -> subprocess.Popen:
    """`celery -A homeserver worker --pool solo -Q <queue>`, waited for until ready."""
    celery = Path(sys.executable).parent / "celery"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [str(celery), "-A", "homeserver", "worker", "--pool", "solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if "ready." in text:
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited:\n{text[-3000:]}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"celery worker not ready:\n{log_path.read_text(errors='replace')[-3000:]}")


def stop_worker(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, tmp_path_factory):
    """None in the embedded mode (deliveries run in a thread of the test process)."""
    from django.conf import settings

    if settings.CELERY_TASK_ALWAYS_EAGER:
        yield None
        return
    base = os.environ["PALISADE_DATABASE_URL"]
    test_db = settings.DATABASES["default"]["NAME"]
    url = urlunsplit(urlsplit(base)._replace(path=f"/{test_db}"))
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    proc = start_worker(worker_env(url, settings.PALISADE.redis.url, QUEUE), QUEUE, log_path)
    proc.log_path = log_path  # type: ignore[attr-defined]
    yield proc
    stop_worker(proc)
