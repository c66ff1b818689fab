from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0005_directory")]

    operations = [
        migrations.CreateModel(
            name="ServerKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("server_name", models.CharField(max_length=255)),
                ("key_id", models.CharField(max_length=255)),
                ("verify_key", models.CharField(max_length=255)),
                ("valid_until_ts", models.BigIntegerField(default=0)),
                ("expired_ts", models.BigIntegerField(null=True)),
                ("fetched_ts", models.BigIntegerField()),
                ("key_json", models.TextField()),
            ],
            options={"db_table": "server_keys"},
        ),
        migrations.AddConstraint(
            model_name="serverkey",
            constraint=models.UniqueConstraint(fields=("server_name", "key_id"), name="server_keys_uniq"),
        ),
    ]
