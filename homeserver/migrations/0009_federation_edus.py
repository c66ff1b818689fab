"""Federation: remote device lists and EDUs (models/federation_edus.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0008_federation_outbound")]

    operations = [
        migrations.CreateModel(
            name="DeviceListOutbound",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("user_id", models.CharField(max_length=255, unique=True)),
                ("stream_id", models.BigIntegerField()),
            ],
            options={
                "db_table": "federation_device_list_outbound",
            },
        ),
        migrations.CreateModel(
            name="RemoteDeviceList",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("user_id", models.CharField(max_length=255, unique=True)),
                ("stream_id", models.BigIntegerField()),
                ("stale", models.BooleanField(default=False)),
                ("updated_ts", models.BigIntegerField()),
            ],
            options={
                "db_table": "federation_remote_device_lists",
            },
        ),
        migrations.CreateModel(
            name="InboundToDevice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("origin", models.CharField(max_length=255)),
                ("message_id", models.CharField(max_length=255)),
                ("received_ts", models.BigIntegerField()),
            ],
            options={
                "db_table": "federation_inbound_to_device",
                "indexes": [models.Index(fields=["received_ts"], name="fed_in_to_device_ts")],
                "constraints": [models.UniqueConstraint(fields=("origin", "message_id"), name="fed_in_to_device_uniq")],
            },
        ),
        migrations.CreateModel(
            name="RemoteCrossSigningKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("user_id", models.CharField(max_length=255)),
                ("key_type", models.CharField(max_length=32)),
                ("key_json", models.TextField()),
            ],
            options={
                "db_table": "federation_remote_cross_signing_keys",
                "constraints": [models.UniqueConstraint(fields=("user_id", "key_type"), name="fed_remote_csk_uniq")],
            },
        ),
        migrations.CreateModel(
            name="RemoteDevice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("user_id", models.CharField(max_length=255)),
                ("device_id", models.CharField(max_length=255)),
                ("display_name", models.TextField(null=True)),
                ("keys_json", models.TextField(default="")),
            ],
            options={
                "db_table": "federation_remote_devices",
                "constraints": [models.UniqueConstraint(fields=("user_id", "device_id"), name="fed_remote_device_uniq")],
            },
        ),
    ]
