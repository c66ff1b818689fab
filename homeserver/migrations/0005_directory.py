# Owned by one feature while several are built at once; the operations for its models go here.
# Issue 5 (directory and conveniences): OpenID tokens.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0004_ephemeral_push")]
    operations = [
        migrations.CreateModel(
            name="OpenIdToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("token_hash", models.CharField(max_length=64, unique=True)),
                ("valid_until_ms", models.BigIntegerField()),
                ("created_ts", models.BigIntegerField()),
                ("user", models.ForeignKey(db_column="user_id", on_delete=django.db.models.deletion.CASCADE, to="homeserver.account", to_field="user_id")),
            ],
            options={
                "db_table": "openid_tokens",
                "indexes": [models.Index(fields=["valid_until_ms"], name="openid_tokens_expiry")],
            },
        ),
    ]
