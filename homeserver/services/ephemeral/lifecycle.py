"""What issue 5's features keep per account, when the account is deactivated (registered in
services/accounts/account.py DEACTIVATION_HOOKS; runs inside the deactivation transaction).

Deactivation: the account's pushers go (pushers of its devices already went with the devices),
it stops typing everywhere (with stream positions, so room members see it) and its presence is
removed. Erasure (GDPR) also deletes its push rules, notifications, receipts and read marks.
"""

from __future__ import annotations

from homeserver.services.ephemeral.typing import expire_due_typing, now_ms
from homeserver.storage import presence as presence_store
from homeserver.storage import push as push_store
from homeserver.storage import push_actions as action_store
from homeserver.storage import receipts as receipt_store
from homeserver.storage import typing as typing_store


def on_account_deactivated(user_id: str, erase: bool) -> None:
    push_store.delete_user_push_data(user_id, rules=erase)
    presence_store.delete_presence(user_id)
    typing_store.make_due(user_id)
    expire_due_typing(now_ms())
    if erase:
        action_store.delete_for_users([user_id])
        receipt_store.delete_for_users([user_id])
