"""Federation: remote media cache (homeserver/models/media.py RemoteMedia, RemoteMediaThumbnail).
Hand-written: the placeholder of this feature, so parallel work never forks the graph."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0009_federation_edus")]

    operations: list = [
        migrations.CreateModel(
            name="RemoteMedia",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("server_name", models.CharField(max_length=255)),
                ("media_id", models.CharField(max_length=255)),
                ("fetched_ts", models.BigIntegerField()),
                ("content_type", models.CharField(default="", max_length=255)),
                ("sniffed_type", models.CharField(default="", max_length=64)),
                ("upload_name", models.CharField(default="", max_length=255)),
                ("size", models.BigIntegerField()),
                ("sha256", models.CharField(max_length=64)),
                ("file_key", models.CharField(max_length=255)),
                ("quarantined_by", models.CharField(default="", max_length=255)),
                ("quarantined_ts", models.BigIntegerField(null=True)),
            ],
            options={
                "db_table": "remote_media_cache",
                "constraints": [models.UniqueConstraint(fields=("server_name", "media_id"),
                                                        name="remote_media_uniq")],
            },
        ),
        migrations.CreateModel(
            name="RemoteMediaThumbnail",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("width", models.IntegerField()),
                ("height", models.IntegerField()),
                ("method", models.CharField(max_length=8)),
                ("animated", models.BooleanField(default=False)),
                ("content_type", models.CharField(max_length=64)),
                ("size", models.BigIntegerField()),
                ("file_key", models.CharField(max_length=255)),
                ("created_ts", models.BigIntegerField()),
                ("media", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                            related_name="thumbnails",
                                            to="homeserver.remotemedia")),
            ],
            options={
                "db_table": "remote_media_thumbnails",
                "constraints": [models.UniqueConstraint(
                    fields=("media", "width", "height", "method", "animated"),
                    name="remote_media_thumbnail_uniq")],
            },
        ),
    ]
