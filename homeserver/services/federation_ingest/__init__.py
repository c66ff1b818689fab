"""Receiving PDUs from other servers, one module per step of the spec's "Checks performed on
receipt of a PDU" (server-server API):

1. format.py      is a valid event, else dropped
2. signatures.py  passes signature checks, else dropped
3. hashes.py      passes hash checks, else redacted before going further
4. auth_events.py passes the auth rules on the event's own auth events, else rejected
5. state_before.py passes the auth rules on the state before the event, else rejected
6. (persist)      passes the auth rules on the room's current state, else soft-failed

Steps 4-6 are decided in the transaction that stores the outcome (services/federation/
persist.py); auth_events.py and state_before.py fetch what those steps need and we lack (the
auth chain through event_auth, the state through state_ids/state), missing.py fetches missing
prev events (get_missing_events), pipeline.py runs it all for a /send transaction.
"""
