"""Palisade: the Django project package and the Matrix homeserver itself.

The Celery application lives in homeserver/celery.py. `celery -A homeserver` finds it there,
and the task modules import it, so a server process loads Celery (~7 MiB) only when it first
queues a task, not at start.
"""


def __getattr__(name: str) -> object:
    if name == "celery_app":  # the name Django-Celery projects conventionally export
        from homeserver.celery import app

        return app
    raise AttributeError(f"module 'homeserver' has no attribute {name!r}")
