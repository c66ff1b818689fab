"""Getting notifications to push gateways off the request path, with retries.

With Redis, Celery tasks on the `[push] celery_queue` queue do the work (a worker process runs
them; a retry is the same task re-sent with a countdown: exponential backoff). Without Redis
(the embedded default, where Celery would run tasks eagerly inside the request), a daemon thread
does it instead, so a slow or dead gateway never delays a send; retries wait in timers.

Spec: push gateway API "Homeserver behaviour": "If the endpoint returns an HTTP error code, the
homeserver SHOULD retry for a reasonable amount of time using exponential backoff."
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import connections

from homeserver.services.background import tasks_run_in_process
from homeserver.services.push import delivery
from homeserver.storage import push as push_store

logger = logging.getLogger(__name__)


def _queue() -> str:
    return settings.PALISADE.push.celery_queue


def backoff_seconds(attempt: int) -> float:
    """Delay before retry number `attempt + 1`: initial * 2^attempt, capped."""
    cfg = settings.PALISADE.push
    return min(cfg.backoff_max_seconds, cfg.backoff_initial_seconds * (2 ** attempt))


def _thread(delay: float, fn: Callable[..., None], *args: object) -> None:
    def run() -> None:
        try:
            fn(*args)
        except Exception:
            logger.exception("push delivery failed")
        finally:
            connections.close_all()  # this thread's connections only

    timer = threading.Timer(delay, run)
    timer.daemon = True
    timer.start()


def enqueue_event(event_id: str, user_ids: list[str]) -> None:
    """After commit: deliver `event_id` to every http pusher of `user_ids`. Whether the
    notifications carry content is decided here, by the server that produced them, and travels
    with the tasks."""
    include = delivery.include_content()
    if tasks_run_in_process():
        _thread(0, fan_out, event_id, user_ids, include)
        return
    from homeserver.tasks.push import fan_out_task

    fan_out_task.apply_async((event_id, user_ids, include), queue=_queue())


def fan_out(event_id: str, user_ids: list[str], include: bool) -> None:
    for pusher in push_store.pushers_for_users(user_ids):
        schedule_delivery(pusher.id, event_id, include, 0, 0.0)


def schedule_delivery(pusher_id: int, event_id: str, include: bool, attempt: int,
                      delay: float) -> None:
    if tasks_run_in_process():
        _thread(delay, run_delivery, pusher_id, event_id, include, attempt)
        return
    from homeserver.tasks.push import deliver_task

    deliver_task.apply_async((pusher_id, event_id, include, attempt), countdown=delay,
                             queue=_queue())


def run_delivery(pusher_id: int, event_id: str, include: bool, attempt: int) -> str:
    outcome = delivery.attempt_delivery(pusher_id, event_id, include)
    if outcome == delivery.RETRY:
        if attempt + 1 < settings.PALISADE.push.max_attempts:
            schedule_delivery(pusher_id, event_id, include, attempt + 1,
                              backoff_seconds(attempt))
        else:
            logger.warning("push of %s to pusher %s given up after %d attempts",
                           event_id, pusher_id, attempt + 1)
    return outcome
