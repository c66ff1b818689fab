"""Palisade: the Django project package and the Matrix homeserver itself."""

from homeserver.celery import app as celery_app

__all__ = ["celery_app"]
