"""Celery tasks delivering the federation outbound queue (see services/federation/sender.py).

`deliver_task(destination)` sends what is queued for one destination; `sweep_task` kicks every
destination with due rows. The sweep runs when a worker starts (worker_ready: a restart resumes
the queue at once) and periodically from Celery beat (celery.py), which also recovers retries a
killed worker held in memory.
"""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from homeserver.celery import app

logger = logging.getLogger(__name__)


@app.task(name="palisade.federation.deliver", acks_late=True, ignore_result=True)
def deliver_task(destination: str) -> str:
    from homeserver.services.federation.sender import deliver

    return deliver(destination)


@app.task(name="palisade.federation.sweep", ignore_result=True)
def sweep_task() -> list[str]:
    from homeserver.services.federation.sender import sweep

    return sweep()


@worker_ready.connect
def _resume_queue_on_start(sender: object = None, **kwargs: object) -> None:
    from django.db import connections

    from homeserver.services.federation.sender import release_stale_leases, sweep

    try:
        freed = release_stale_leases()
        due = sweep()
        logger.info("federation outbound queue: freed %d stale leases, kicked %d destinations",
                    len(freed), len(due))
    except Exception:  # never keep a worker from starting; beat sweeps again later
        logger.exception("federation outbound queue: resuming on start failed")
    finally:
        connections.close_all()
