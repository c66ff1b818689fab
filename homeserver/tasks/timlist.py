"""Celery task keeping the TI-Messenger federation list current (compliance/timlist/refresh.py;
REQUIREMENTS.md A_25537). Beat runs it every `retry_interval_seconds` (homeserver/celery.py); it
fetches only when due: `refresh_interval_seconds` after a success, `retry_interval_seconds` after
a failure."""

from __future__ import annotations

from homeserver.celery import app


@app.task(name="palisade.compliance.timlist_refresh")
def refresh_timlist_task() -> str:
    from compliance.timlist.refresh import refresh_if_due

    outcome = refresh_if_due()
    return "not due" if outcome is None else outcome.result
