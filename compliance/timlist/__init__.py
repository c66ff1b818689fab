"""The TI-Messenger federation list as a federation source (REQUIREMENTS.md A_25534, AF_10064,
"list source", A_25537).

When active (`[federation.ti_messenger_list]`: `enabled = true`, or under a ti-m-* profile when
`url` is set), only servers on the list may federate with us, in either direction, besides the
entries of the local allow-list; a list older than `max_age_hours` (72 h), or none at all,
blocks all federation. A server not on the list makes us re-fetch the list once per refresh
period before it is refused (compliance/timlist/refresh.py).

Every process reads the stored list (compliance.models.TiMessengerFederationList) through a
small cache that looks at the row's version and times at most every CHECK_SECONDS, so a list
fetched by the Celery worker applies in every web worker within seconds.
"""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from compliance.timlist.payload import FederationList
from homeserver.config import TiMessengerListConfig

CHECK_SECONDS = 2.0
RULE_STALE = "federation.ti_messenger_list_stale"
RULE_UNLISTED = "federation.ti_messenger_list"


def config() -> TiMessengerListConfig:
    return settings.PALISADE.federation.ti_messenger_list


def is_active() -> bool:
    cfg = config()
    if cfg.enabled is not None:
        return cfg.enabled
    from compliance.profiles import PROFILES

    profile = PROFILES[settings.PALISADE.compliance_profile]
    return profile.ti_messenger_federation_list and bool(cfg.url)


@dataclass(frozen=True)
class Snapshot:
    flist: FederationList | None
    confirmed_at: datetime.datetime | None

    def age(self, now: datetime.datetime | None = None) -> datetime.timedelta | None:
        if self.confirmed_at is None:
            return None
        return (now or timezone.now()) - self.confirmed_at

    def is_stale(self, now: datetime.datetime | None = None) -> bool:
        age = self.age(now)
        return self.flist is None or age is None \
            or age > datetime.timedelta(hours=config().max_age_hours)


_lock = threading.Lock()
_cached: dict[str, object] = {"snapshot": Snapshot(None, None), "marker": None,
                              "checked_at": float("-inf")}


def snapshot() -> Snapshot:
    """The list this server holds, at most CHECK_SECONDS behind the database."""
    from compliance.models import TiMessengerFederationList

    if time.monotonic() - _cached["checked_at"] < CHECK_SECONDS:  # type: ignore[operator]
        return _cached["snapshot"]  # type: ignore[return-value]
    with _lock:
        row = TiMessengerFederationList.objects.filter(pk=1).values(
            "version", "fetched_at", "confirmed_at").first()
        marker = (row or {}).get("version"), (row or {}).get("fetched_at")
        current: Snapshot = _cached["snapshot"]  # type: ignore[assignment]
        if marker != _cached["marker"]:
            current = load()
        elif row is not None:
            current = Snapshot(current.flist, row["confirmed_at"])
        _cached.update(snapshot=current, marker=marker, checked_at=time.monotonic())
        return current


def load() -> Snapshot:
    from compliance.models import TiMessengerFederationList

    row = TiMessengerFederationList.objects.filter(pk=1).first()
    if row is None or row.version is None:
        return Snapshot(None, None)
    flist = FederationList(row.version, tuple(row.entries), row.hash_algorithm)
    return Snapshot(flist, row.confirmed_at)


def forget() -> None:
    """Drop this process's copy (after a refresh here, and in tests)."""
    with _lock:
        _cached.update(snapshot=Snapshot(None, None), marker=None, checked_at=float("-inf"))


def decide(server: str) -> str | None:
    """None when the list admits `server`; else the rule that refuses it. Only called while the
    list is active and `server` is on no local allow-list entry."""
    snap = snapshot()
    if snap.is_stale():
        return RULE_STALE
    if snap.flist.lookup(server) is not None:  # type: ignore[union-attr]
        return None
    from compliance.timlist.refresh import refetch_for_unknown

    if refetch_for_unknown(server):
        snap = snapshot()
        if not snap.is_stale() and snap.flist.lookup(server) is not None:  # type: ignore
            return None
    return RULE_UNLISTED


def entry_for(server: str) -> dict | None:
    """The list entry of `server` (telematikID, isInsurance, ...) or None; for other policies,
    e.g. the insured-person invite rules (AF_10233)."""
    snap = snapshot()
    return snap.flist.lookup(server) if snap.flist is not None else None
