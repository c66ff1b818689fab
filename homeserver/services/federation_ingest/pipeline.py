"""A /send transaction from another server: every PDU through the spec's checks, every EDU to
its handler, one answer per transaction id.

Spec: server-server API "Transactions" (PUT /send/{txnId}: at most 50 PDUs and 100 EDUs; the
response maps each PDU's event id to {} or {"error": ...}; the same transaction id from the
same origin must not be processed twice) and "Checks performed on receipt of a PDU".
"""

from __future__ import annotations

import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from compliance.hooks import Hook, PolicyDenied
from compliance.hooks import run as run_policy
from homeserver.protocol.errors import Errcode, MatrixError
from homeserver.protocol.events import Event
from homeserver.services.federation import client
from homeserver.services.federation.invites import apply_out_of_band_membership
from homeserver.services.federation.pdu_checks import PduRejected, check_pdu
from homeserver.services.federation.persist import (
    ACCEPTED,
    REJECTED,
    SOFT_FAILED,
    MissingEvents,
    persist_remote_event,
)
from homeserver.services.federation_ingest.auth_events import fetch_missing_auth_events
from homeserver.services.federation_ingest.format import check_format
from homeserver.services.federation_ingest.missing import (
    fetch_missing_events,
    missing_prev_events,
)
from homeserver.services.federation_ingest.state_before import fetch_state_before
from homeserver.storage import events as event_store
from homeserver.storage import federation_txns
from homeserver.storage.rooms import room_version

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100


def _check_body(origin: str, body: Any) -> tuple[list, list]:
    if not isinstance(body, dict):
        raise MatrixError(400, Errcode.BAD_JSON, "The transaction must be a JSON object")
    if body.get("origin", origin) != origin:
        raise MatrixError(400, Errcode.BAD_JSON, "Transaction origin does not match X-Matrix")
    pdus, edus = body.get("pdus", []), body.get("edus", [])
    if not isinstance(pdus, list) or not isinstance(edus, list):
        raise MatrixError(400, Errcode.BAD_JSON, "`pdus` and `edus` must be lists")
    if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
        raise MatrixError(400, Errcode.BAD_JSON,
                          f"A transaction holds at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs")
    return pdus, edus


async def receive_transaction(origin: str, txn_id: str, body: Any) -> dict[str, Any]:
    pdus, edus = _check_body(origin, body)
    done = await sync_to_async(federation_txns.get_response)(origin, txn_id)
    if done is not None:
        return done
    results: dict[str, dict[str, str]] = {}
    for pdu in pdus:
        event_id, error = await _receive_pdu(origin, pdu)
        if event_id is not None:
            results[event_id] = {"error": error} if error else {}
    for edu in edus:
        await _receive_edu(origin, edu)
    response = {"pdus": results}
    await sync_to_async(federation_txns.save_response)(origin, txn_id, response,
                                                       int(time.time() * 1000))
    return response


async def _receive_edu(origin: str, edu: Any) -> None:
    if not isinstance(edu, dict) or not isinstance(edu.get("edu_type"), str):
        return
    try:
        from homeserver.services.federation.edus import handle_edu
    except ImportError:  # EDU handling lands separately; until then EDUs are not processed
        logger.warning("no EDU handler: dropping %s from %s", edu.get("edu_type"), origin)
        return
    try:
        await sync_to_async(handle_edu)(origin, edu)
    except Exception:  # one bad EDU never fails the transaction
        logger.exception("EDU %s from %s failed", edu.get("edu_type"), origin)


async def _receive_pdu(origin: str, pdu: Any) -> tuple[str | None, str | None]:
    room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
    rv = await sync_to_async(room_version)(room_id) if isinstance(room_id, str) else None
    if rv is None:
        # Not a room we are in: we cannot even name the event (its id depends on the version).
        logger.info("dropping a PDU from %s for unknown room %r", origin, room_id)
        return None, None
    try:
        event_id = check_format(pdu, rv)
    except PduRejected as e:
        logger.info("dropping a malformed PDU from %s: %s", origin, e)
        return None, None
    try:
        event = await check_pdu(pdu, rv)
    except PduRejected as e:
        return event_id, str(e)
    # A revoked invite (or refused knock) for a room we know only from that invite: there is
    # no room graph to place it in (services/federation/invites.py).
    if await sync_to_async(apply_out_of_band_membership)(origin, event):
        return event_id, None
    try:
        outcome = await ingest_event(origin, event)
    except (client.FederationError, MatrixError, MissingEvents) as e:
        logger.warning("could not process %s from %s: %s", event_id, origin, e)
        return event_id, f"could not process the event: {e}"
    if outcome == REJECTED:
        return event_id, "event rejected by the authorization rules"
    return event_id, None


def _policy_verdict(event: Event) -> str | None:
    """Hook.FEDERATION_PDU after the signature checks: a denial withholds the event from local
    clients (it stays in the room graph, which must stay consistent) and is audited."""
    try:
        run_policy(Hook.FEDERATION_PDU,
                   {"actor": event.sender, "actor_type": "remote_server", "target": event.room_id,
                    "room_id": event.room_id, "event_type": event.type,
                    "event_id": event.event_id, "is_state": event.is_state},
                   value=event.pdu)
    except PolicyDenied as denied:
        return f"policy:{denied.rule}"
    return None


def _audit_withheld(event: Event, reason: str) -> None:
    from audit.actions import ActorType, AuditAction
    from audit.log import record

    with transaction.atomic():
        record(AuditAction.POLICY_DENIED, actor=event.sender, actor_type=ActorType.REMOTE_SERVER,
               target=event.room_id,
               details={"hook": str(Hook.FEDERATION_PDU), "rule": reason.removeprefix("policy:"),
                        "event_id": event.event_id, "event_type": event.type,
                        "outcome": "withheld from local clients"})


async def ingest_event(origin: str, event: Event, *, fill_gaps: bool = True,
                       backfill_position: int | None = None) -> str:
    """Steps 4-6 for an event that passed steps 1-3, fetching what it refers to first.
    `backfill_position`: history fetched on demand (services/federation/backfill.py)."""
    backfilled = backfill_position is not None
    known = await sync_to_async(event_store.event_status)(event.event_id)
    if known is not None and not known[0]:
        return ACCEPTED if known[1] is None else REJECTED
    state_before = None
    missing = await missing_prev_events(event)
    if missing and fill_gaps and not backfilled:
        for earlier in await fetch_missing_events(origin, event):
            if earlier.event_id != event.event_id:
                await ingest_event(origin, earlier, fill_gaps=False)
        missing = await missing_prev_events(event)
    if missing:
        state_before = await fetch_state_before(origin, event)
    await fetch_missing_auth_events(origin, event)
    withheld = await sync_to_async(_policy_verdict)(event)
    outcome = await sync_to_async(persist_remote_event)(event, state_before=state_before,
                                                        withheld_reason=withheld,
                                                        backfill_position=backfill_position)
    if withheld and outcome not in (REJECTED, SOFT_FAILED):
        await sync_to_async(_audit_withheld)(event, withheld)
    return outcome
