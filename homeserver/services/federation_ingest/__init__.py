"""Receiving PDUs from other servers, one module per step of the spec's "Checks performed on
receipt of a PDU" (server-server API):

1. format.py      is a valid event, else dropped
2. signatures.py  passes signature checks, else dropped
3. hashes.py      passes hash checks, else redacted before going further
4. auth_events.py passes the auth rules on the event's own auth events, else rejected
5. state_before.py passes the auth rules on the state before the event, else rejected
6. soft_fail.py   passes the auth rules on the room's current state, else soft-failed

missing.py fetches what the event refers to but we do not hold (prev events through
get_missing_events, state through state_ids, auth events through event_auth); pipeline.py runs
the steps for a /send transaction and for events fetched on the way; persisting is
services/federation/persist.py.
"""
