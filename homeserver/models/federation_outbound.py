from django.db import models


class OutboundItem(models.Model):
    """One PDU or EDU waiting to be sent to one destination server.

    Rows of a destination are sent in `id` order. `txn_id` is stamped on the rows of a
    transaction when it is first built, so a retry (after a failure or a crash) re-sends exactly
    the same rows under the same transaction id (spec: server-server API "Transactions": the
    receiver deduplicates per origin and txnId). Rows are deleted once the receiver answered 200.
    """

    KIND_PDU = "pdu"
    KIND_EDU = "edu"

    destination = models.CharField(max_length=255)
    kind = models.CharField(max_length=3)  # "pdu" | "edu"
    # Canonical JSON: the PDU as sent, or {"edu_type": ..., "content": ...}.
    json = models.TextField()
    created_ts = models.BigIntegerField()  # ms since the epoch
    txn_id = models.CharField(max_length=64, null=True)

    class Meta:
        db_table = "federation_outbound_items"
        indexes = [models.Index(fields=["destination", "id"], name="fed_out_dest_order")]


class OutboundDestination(models.Model):
    """Delivery state of one destination: when to try next and what happened last.

    `lease_owner`/`lease_until_ts` make one sender per destination at a time without holding a
    database transaction across the HTTP request: a sender claims the lease with one conditional
    UPDATE; a crashed sender's lease simply expires.
    """

    destination = models.CharField(max_length=255, unique=True)
    retry_at_ts = models.BigIntegerField(default=0)  # ms; not before this time
    backoff_ms = models.BigIntegerField(default=0)  # the wait after the last failure
    failures = models.IntegerField(default=0)  # consecutive failures
    last_success_ts = models.BigIntegerField(null=True)
    last_error = models.TextField(default="")
    lease_owner = models.CharField(max_length=64, default="")
    lease_until_ts = models.BigIntegerField(default=0)

    class Meta:
        db_table = "federation_outbound_destinations"
