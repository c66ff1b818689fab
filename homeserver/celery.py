"""Celery application. Broker = Redis from the config; without Redis, tasks run eagerly."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homeserver.settings")

app = Celery("palisade")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["homeserver.tasks"], related_name=None, force=False)


@app.on_after_configure.connect
def _beat_schedule(sender: Celery, **kwargs: object) -> None:
    """Periodic tasks for Celery beat (`celery -A homeserver beat`, or a worker with -B):
    the federation outbound queue sweep (docs/federation.md "Outbound queue")."""
    from django.conf import settings

    fed = settings.PALISADE.federation
    sender.add_periodic_task(
        fed.sweep_interval_seconds,
        sender.signature("palisade.federation.sweep", queue=fed.celery_queue),
        name="palisade.federation.sweep",
    )


@app.on_after_configure.connect
def _timlist_beat_schedule(sender: Celery, **kwargs: object) -> None:
    """The TI-Messenger federation list refresh (compliance/timlist/refresh.py): beat wakes the
    task every retry interval; the task fetches only when a refresh or a retry is due."""
    from django.conf import settings

    tim = settings.PALISADE.federation.ti_messenger_list
    sender.add_periodic_task(
        tim.retry_interval_seconds,
        sender.signature("palisade.compliance.timlist_refresh"),
        name="palisade.compliance.timlist_refresh",
    )
