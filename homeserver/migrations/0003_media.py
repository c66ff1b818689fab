# Owned by one feature while several are built at once; the operations for its models go here.
# The content repository: homeserver/models/media.py.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0002_e2ee")]
    operations = [
        migrations.CreateModel(
            name='LocalMedia',
            fields=[
                ('media_id', models.CharField(max_length=255, primary_key=True, serialize=False)),
                ('user_id', models.CharField(max_length=255)),
                ('created_ts', models.BigIntegerField()),
                ('upload_ts', models.BigIntegerField(null=True)),
                ('unused_expires_ts', models.BigIntegerField(null=True)),
                ('content_type', models.CharField(default='', max_length=255)),
                ('sniffed_type', models.CharField(default='', max_length=64)),
                ('upload_name', models.CharField(default='', max_length=255)),
                ('size', models.BigIntegerField(default=0)),
                ('sha256', models.CharField(default='', max_length=64)),
                ('file_key', models.CharField(default='', max_length=255)),
                ('quarantined_by', models.CharField(default='', max_length=255)),
                ('quarantined_ts', models.BigIntegerField(null=True)),
            ],
            options={
                'db_table': 'local_media',
                'indexes': [models.Index(fields=['user_id', 'created_ts'], name='local_media_user')],
            },
        ),
        migrations.CreateModel(
            name='MediaThumbnail',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('width', models.IntegerField()),
                ('height', models.IntegerField()),
                ('method', models.CharField(max_length=8)),
                ('animated', models.BooleanField(default=False)),
                ('content_type', models.CharField(max_length=64)),
                ('size', models.BigIntegerField()),
                ('file_key', models.CharField(max_length=255)),
                ('created_ts', models.BigIntegerField()),
                ('media', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='thumbnails', to='homeserver.localmedia')),
            ],
            options={
                'db_table': 'media_thumbnails',
                'constraints': [models.UniqueConstraint(fields=('media', 'width', 'height', 'method', 'animated'), name='media_thumbnail_uniq')],
            },
        ),
    ]
