"""Celery task keeping the TI-Messenger federation list current (compliance/timlist/refresh.py;
REQUIREMENTS.md A_25537). Beat runs it every `retry_interval_seconds` (homeserver/celery.py); it
fetches only when due: `refresh_interval_seconds` after a success, `retry_interval_seconds` after
a failure. A worker also queues it when it starts, so a fresh deployment does not wait for the
first beat tick with federation blocked."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from homeserver.celery import app

logger = logging.getLogger("palisade.compliance.timlist")


@app.task(name="palisade.compliance.timlist_refresh", ignore_result=True)
def refresh_timlist_task() -> str:
    from compliance.timlist.refresh import refresh_if_due

    outcome = refresh_if_due()
    return "not due" if outcome is None else outcome.result


@worker_ready.connect
def _refresh_on_start(sender: object = None, **kwargs: object) -> None:
    from compliance import timlist

    try:
        if timlist.is_active():
            refresh_timlist_task.delay()
    except Exception:  # never keep a worker from starting; beat tries again
        logger.exception("TI-Messenger federation list: queueing a refresh on start failed")
