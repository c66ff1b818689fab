from django.db import models


class ServerKey(models.Model):
    """A remote server's ed25519 verify key as fetched (directly or through a notary).

    Spec: server-server API "Retrieving server keys": keys are valid until valid_until_ts;
    old_verify_keys carry expired_ts instead.
    """

    server_name = models.CharField(max_length=255)
    key_id = models.CharField(max_length=255)
    verify_key = models.CharField(max_length=255)  # unpadded base64
    valid_until_ts = models.BigIntegerField(default=0)
    expired_ts = models.BigIntegerField(null=True)
    fetched_ts = models.BigIntegerField()
    # The signed key document as received, for answering /key/v2/query as a notary.
    key_json = models.TextField()

    class Meta:
        db_table = "server_keys"
        constraints = [
            models.UniqueConstraint(fields=["server_name", "key_id"], name="server_keys_uniq")
        ]


class InboundTransaction(models.Model):
    """A /send transaction we answered, so a retry with the same id gets the same answer and
    nothing is processed twice. Spec: server-server API "Transactions": the transaction id is
    unique per origin."""

    origin = models.CharField(max_length=255)
    txn_id = models.CharField(max_length=255)
    response_json = models.TextField()
    received_ts = models.BigIntegerField()

    class Meta:
        db_table = "federation_inbound_txns"
        constraints = [
            models.UniqueConstraint(fields=["origin", "txn_id"], name="fed_inbound_txn_uniq")
        ]
