from django.db import models


class ClientTxn(models.Model):
    """Transaction-id idempotency for client sends. Spec: client-server API "Transaction
    identifiers": scoped to the device (access token's device), path and txnId."""

    user_id = models.CharField(max_length=255)
    device_id = models.CharField(max_length=255)
    path_key = models.CharField(max_length=512)
    txn_id = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255)
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "client_txns"
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "device_id", "path_key", "txn_id"], name="client_txn_uniq"
            )
        ]


class StreamCounter(models.Model):
    """The server-wide stream position, one row. Every write that clients observe through /sync
    takes its position with UPDATE ... RETURNING on this row; the row lock is held to commit, so
    positions commit in order and "everything <= the committed value is visible" holds. That is
    what makes a since-token a single integer that stays valid across restarts."""

    name = models.CharField(max_length=32, primary_key=True)
    value = models.BigIntegerField(default=0)

    class Meta:
        db_table = "stream_counters"
