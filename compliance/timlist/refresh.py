"""Keeping the TI-Messenger federation list current (REQUIREMENTS.md A_25537).

`refresh()` asks the list server for `<url>?version=<held version>`: 204 means ours is current
(gematik I_VZD_TIM_Provider_Services getFederationList: "204 if the version of the list is less
than or equal to the version parameter"); 200 carries a JWS, which is verified (jws.py) and
its payload validated (payload.py) before it replaces the held list. A rejected download leaves
the held list in place. Failures count up; the `incident_after_failures`-th consecutive one
raises an incident (audit record TIM_FEDERATION_LIST_INCIDENT + an ERROR log line), once per
run of failures. `refresh_if_due()` is what the Celery beat task runs: hourly
(`refresh_interval_seconds`) after a success, every `retry_interval_seconds` after a failure.

`refetch_for_unknown(server)`: a server not on the list gets one re-fetch per refresh period
(counted in the database, so across processes), and re-fetches for unknown servers happen at
most once per `unknown_domain_refetch_seconds` overall, so a peer inventing names cannot make
us fetch in a loop.
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.log import record_system
from compliance import timlist
from compliance.models import TiMessengerFederationList
from compliance.timlist import jws
from compliance.timlist.payload import PayloadError, _key, parse

log = logging.getLogger("palisade.compliance.timlist")
ACTOR = "ti-messenger-federation-list"
MAX_BYTES = 32 * 1024 * 1024
MAX_REFETCHED_PER_PERIOD = 10_000


@dataclass(frozen=True)
class Outcome:
    result: str  # "updated", "current", "failed"
    version: int | None = None
    error: str = ""


def _row() -> TiMessengerFederationList:
    row, _ = TiMessengerFederationList.objects.select_for_update().get_or_create(pk=1)
    return row


def _path(p: str) -> Path:
    path = Path(p)
    return path if path.is_absolute() else Path(settings.CONFIG_DIR) / path


def _anchors() -> list:
    cfg = timlist.config()
    try:
        return jws.load_anchors([_path(p).read_bytes() for p in cfg.trust_anchors])
    except OSError as e:
        raise jws.JwsError(f"cannot read a trust anchor: {e}") from None
    except ValueError as e:
        raise jws.JwsError(f"cannot read a trust anchor: {e}") from None


def _download(held: int | None) -> httpx.Response:
    cfg = timlist.config()
    verify: str | bool = str(_path(cfg.tls_ca_file)) if cfg.tls_ca_file else True
    params = {"version": str(held)} if held is not None else None
    with httpx.Client(verify=verify, timeout=cfg.request_timeout_seconds,
                      follow_redirects=False) as client:
        return client.get(cfg.url, params=params,
                          headers={"Accept": "application/jose", "User-Agent": "Palisade"})


def refresh(*, reason: str = "scheduled") -> Outcome:
    """Fetch, verify and store the list once; never raises for a failure it can record."""
    with transaction.atomic():
        held = _row().version
    attempt_at = timezone.now()
    try:
        resp = _download(held)
    except httpx.HTTPError as e:
        return _failed(attempt_at, f"cannot reach the list server: {type(e).__name__}: {e}",
                       rejected=False)
    if resp.status_code == 204:
        if held is None:
            return _failed(attempt_at, "the list server answered 204 but no list is held",
                           rejected=False)
        return _confirmed(attempt_at, held)
    if resp.status_code != 200:
        return _failed(attempt_at, f"the list server answered HTTP {resp.status_code}",
                       rejected=False)
    if len(resp.content) > MAX_BYTES:
        return _failed(attempt_at, "the list is larger than the limit", rejected=True)
    try:
        verified = jws.verify(resp.content, _anchors())
        flist = parse(verified.payload)
    except (jws.JwsError, PayloadError) as e:
        return _failed(attempt_at, f"list rejected: {e}", rejected=True)
    if held is not None and flist.version < held:
        return _failed(attempt_at, f"list rejected: version {flist.version} is older than the "
                                   f"held version {held}", rejected=True)
    return _store(attempt_at, flist, verified, reason)


def _store(at: datetime.datetime, flist, verified: jws.VerifiedJws, reason: str) -> Outcome:
    with transaction.atomic():
        row = _row()
        changed = row.version != flist.version
        row.version, row.entries, row.hash_algorithm = (flist.version, list(flist.entries),
                                                        flist.hash_algorithm)
        if changed or row.fetched_at is None:
            row.fetched_at = at
        row.confirmed_at = at
        row.signature_alg = verified.alg
        row.signer = verified.signer[:500]
        row.signature_result = (f"valid {verified.alg} signature by {verified.signer}, "
                                f"chain to {verified.anchor}")[:500]
        row.last_attempt_at = at
        row.consecutive_failures = 0
        row.save()
        if changed:
            record_system(AuditAction.TIM_FEDERATION_LIST_UPDATED, actor=ACTOR,
                          target=f"version {flist.version}", details={
                              "version": flist.version, "domains": len(flist.entries),
                              "hashed": bool(flist.hash_algorithm), "alg": verified.alg,
                              "signer": verified.signer[:200], "reason": reason})
    timlist.forget()
    log.info("TI-Messenger federation list version %s (%d domains)%s", flist.version,
             len(flist.entries), "" if changed else ", unchanged")
    return Outcome("updated" if changed else "current", flist.version)


def _confirmed(at: datetime.datetime, held: int) -> Outcome:
    with transaction.atomic():
        row = _row()
        row.confirmed_at = at
        row.last_attempt_at = at
        row.consecutive_failures = 0
        row.save()
    timlist.forget()
    return Outcome("current", held)


def _failed(at: datetime.datetime, error: str, *, rejected: bool) -> Outcome:
    cfg = timlist.config()
    with transaction.atomic():
        row = _row()
        row.last_attempt_at = at
        row.last_error, row.last_error_at = error[:1000], at
        row.consecutive_failures += 1
        incident = row.consecutive_failures == cfg.incident_after_failures
        if incident:
            row.incident_at = at
        row.save()
        if rejected:
            # A list that fails verification is a security event, not only an outage.
            record_system(AuditAction.TIM_FEDERATION_LIST_REJECTED, actor=ACTOR,
                          target=f"version {row.version}", details={
                              "error": error[:500], "held_version": row.version})
        if incident:
            record_system(AuditAction.TIM_FEDERATION_LIST_INCIDENT, actor=ACTOR,
                          target=f"version {row.version}", details={
                              "consecutive_failures": row.consecutive_failures,
                              "last_error": error[:500], "held_version": row.version,
                              "confirmed_at": row.confirmed_at.isoformat()
                              if row.confirmed_at else None})
    if incident:
        log.error("INCIDENT: the TI-Messenger federation list could not be refreshed %d times "
                  "in a row; last error: %s", cfg.incident_after_failures, error)
    else:
        log.warning("TI-Messenger federation list refresh failed: %s", error)
    return Outcome("failed", error=error)


def is_due(now: datetime.datetime | None = None) -> bool:
    cfg = timlist.config()
    row = TiMessengerFederationList.objects.filter(pk=1).values(
        "last_attempt_at", "consecutive_failures", "version").first()
    if row is None or row["last_attempt_at"] is None:
        return True
    wait = cfg.retry_interval_seconds if row["consecutive_failures"] or row["version"] is None \
        else cfg.refresh_interval_seconds
    return (now or timezone.now()) - row["last_attempt_at"] >= datetime.timedelta(seconds=wait)


def refresh_if_due() -> Outcome | None:
    """The beat task's body: a refresh when one is due, else None."""
    if not timlist.is_active() or not is_due():
        return None
    return refresh()


# Unknown servers this process already re-fetched for: (period, key); spares the database.
_tried: set[tuple[int, str]] = set()


def refetch_for_unknown(server: str) -> bool:
    """Re-fetch the list for a server not on it, if this server has not had its re-fetch in this
    refresh period and no other re-fetch happened in the last unknown_domain_refetch_seconds.
    True when a re-fetch was made."""
    cfg = timlist.config()
    period = int(time.time() // cfg.refresh_interval_seconds)
    key = _key("", server)
    if (period, key) in _tried:
        return False
    now = timezone.now()
    with transaction.atomic():
        row = _row()
        if row.refetch_period != period:
            row.refetch_period, row.refetched_domains = period, []
        if key in row.refetched_domains:
            _tried.add((period, key))
            return False
        if row.last_refetch_at is not None and now - row.last_refetch_at < \
                datetime.timedelta(seconds=cfg.unknown_domain_refetch_seconds):
            return False  # rate limit: not counted, the server may get its re-fetch later
        if len(row.refetched_domains) >= MAX_REFETCHED_PER_PERIOD:
            return False
        row.refetched_domains = [*row.refetched_domains, key]
        row.last_refetch_at = now
        row.save(update_fields=["refetch_period", "refetched_domains", "last_refetch_at"])
    if len(_tried) > MAX_REFETCHED_PER_PERIOD:
        _tried.clear()
    _tried.add((period, key))
    refresh(reason=f"unknown server {server}"[:200])
    return True
