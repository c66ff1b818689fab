"""Celery application. Broker = Redis from the config; without Redis, tasks run eagerly."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homeserver.settings")

app = Celery("palisade")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["homeserver.tasks"], related_name=None, force=False)
