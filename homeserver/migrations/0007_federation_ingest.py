"""Federation: inbound /send (withheld events, transaction idempotency)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0006_federation")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="withheld_reason",
            field=models.TextField(null=True),
        ),
        migrations.CreateModel(
            name="InboundTransaction",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("origin", models.CharField(max_length=255)),
                ("txn_id", models.CharField(max_length=255)),
                ("response_json", models.TextField()),
                ("received_ts", models.BigIntegerField()),
            ],
            options={"db_table": "federation_inbound_txns"},
        ),
        migrations.AddConstraint(
            model_name="inboundtransaction",
            constraint=models.UniqueConstraint(fields=("origin", "txn_id"), name="fed_inbound_txn_uniq"),
        ),
    ]
