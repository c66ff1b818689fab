"""Where background work runs: with Redis, Celery workers take the tasks; without it (the
embedded default, settings.CELERY_TASK_ALWAYS_EAGER) this process runs them itself."""

from __future__ import annotations

from django.conf import settings


def tasks_run_in_process() -> bool:
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", True))
