"""Federation: the outbound queue (items per destination in order, and delivery state)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0007_federation_ingest")]

    operations = [
        migrations.CreateModel(
            name="OutboundDestination",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("destination", models.CharField(max_length=255, unique=True)),
                ("retry_at_ts", models.BigIntegerField(default=0)),
                ("backoff_ms", models.BigIntegerField(default=0)),
                ("failures", models.IntegerField(default=0)),
                ("last_success_ts", models.BigIntegerField(null=True)),
                ("last_error", models.TextField(default="")),
                ("lease_owner", models.CharField(default="", max_length=64)),
                ("lease_until_ts", models.BigIntegerField(default=0)),
            ],
            options={"db_table": "federation_outbound_destinations"},
        ),
        migrations.CreateModel(
            name="OutboundItem",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("destination", models.CharField(max_length=255)),
                ("kind", models.CharField(max_length=3)),
                ("json", models.TextField()),
                ("created_ts", models.BigIntegerField()),
                ("txn_id", models.CharField(max_length=64, null=True)),
            ],
            options={
                "db_table": "federation_outbound_items",
                "indexes": [models.Index(fields=["destination", "id"],
                                         name="fed_out_dest_order")],
            },
        ),
    ]
