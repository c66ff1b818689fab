"""20 clients claim one-time keys of the same device at the same moment, each on its own
thread and database connection (PostgreSQL when PALISADE_DATABASE_URL points there): each of
the 10 one-time keys is handed out exactly once, the other 10 claims get the fallback key."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction

from audit.actions import ActorType
from homeserver.models import FallbackKey, OneTimeKey
from homeserver.services.accounts.register import create_user
from homeserver.services.accounts.sessions import start_session
from homeserver.services.e2ee.device_keys import do_claim_keys, do_upload_keys
from tests.e2ee.clientkeys import ClientDevice

pytestmark = pytest.mark.django_db(transaction=True)

CLAIMERS = 20
KEYS = 10


def _device(localpart: str) -> ClientDevice:
    user_id, _ = create_user(localpart, password="a long password", is_admin=False,
                             actor="tests", actor_type=ActorType.SYSTEM, method="tests")
    with transaction.atomic():
        session = start_session(user_id, device_id=None, display_name="", refreshable=False)
    return ClientDevice(user_id, session.device_id, session.access_token)


def test_concurrent_claims_never_share_a_one_time_key():
    bob = _device("bob")
    otks = bob.one_time_keys(KEYS)
    fallback = bob.one_time_keys(1, fallback=True)
    do_upload_keys(bob.user_id, bob.device_id, {
        "device_keys": bob.device_keys(), "one_time_keys": otks, "fallback_keys": fallback})
    claimers = [f"@claimer{i}:localhost:8008" for i in range(CLAIMERS)]
    barrier = threading.Barrier(CLAIMERS)
    request = {"one_time_keys": {bob.user_id: {bob.device_id: "signed_curve25519"}}}

    def claim(claimer: str) -> tuple[str, dict]:
        try:
            barrier.wait(timeout=60)
            got = do_claim_keys(claimer, request)["one_time_keys"][bob.user_id][bob.device_id]
            ((key_id, key),) = got.items()
            return key_id, key
        finally:
            connections.close_all()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=CLAIMERS) as pool:
        results = list(pool.map(claim, claimers))

    counts = Counter(key_id for key_id, _ in results)
    fallback_id = next(iter(fallback))
    handed_out = {k: n for k, n in counts.items() if k != fallback_id}
    assert handed_out == dict.fromkeys(otks, 1), "a one-time key was handed out twice or lost"
    assert counts[fallback_id] == CLAIMERS - KEYS
    for key_id, key in results:
        assert key == (otks.get(key_id) or fallback[fallback_id])
    assert OneTimeKey.objects.filter(user_id=bob.user_id).count() == 0
    assert FallbackKey.objects.get(user_id=bob.user_id).used
    print(f"database: {connection.vendor}")
