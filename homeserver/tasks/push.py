"""Celery tasks delivering notifications to push gateways (see services/push/dispatch.py)."""

from __future__ import annotations

from homeserver.celery import app


@app.task(name="palisade.push.fan_out", acks_late=True)
def fan_out_task(event_id: str, user_ids: list[str], include: bool) -> None:
    from homeserver.services.push.dispatch import fan_out

    fan_out(event_id, user_ids, include)


@app.task(name="palisade.push.deliver", acks_late=True)
def deliver_task(pusher_id: int, event_id: str, include: bool, attempt: int) -> str:
    from homeserver.services.push.dispatch import run_delivery

    return run_delivery(pusher_id, event_id, include, attempt)
