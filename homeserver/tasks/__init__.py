"""Celery task modules. celery.py autodiscovers this package, so each task module is imported
here to register its tasks with the worker."""

from homeserver.tasks import federation, push, timlist  # noqa: F401
