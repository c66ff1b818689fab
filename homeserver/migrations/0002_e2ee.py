# Owned by one feature while several are built at once; the operations for its models go here.
# End-to-end encryption: keys, signatures, device-list changes, to-device inbox, key backups.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0001_initial")]
    operations = [
        migrations.CreateModel(
            name='CrossSigningKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255)),
                ('key_type', models.CharField(max_length=32)),
                ('public_key', models.CharField(max_length=64)),
                ('key_json', models.TextField()),
                ('stream_ordering', models.BigIntegerField()),
            ],
            options={
                'db_table': 'e2e_cross_signing_keys',
                'constraints': [models.UniqueConstraint(fields=('user_id', 'key_type'), name='e2e_cs_keys_uniq')],
            },
        ),
        migrations.CreateModel(
            name='DeviceKeys',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255)),
                ('device_id', models.CharField(max_length=255)),
                ('ed25519_key', models.CharField(max_length=64)),
                ('key_json', models.TextField()),
                ('updated_ts', models.BigIntegerField()),
            ],
            options={
                'db_table': 'e2e_device_keys',
                'constraints': [models.UniqueConstraint(fields=('user_id', 'device_id'), name='e2e_device_keys_uniq')],
            },
        ),
        migrations.CreateModel(
            name='DeviceListChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255)),
                ('stream_ordering', models.BigIntegerField()),
            ],
            options={
                'db_table': 'e2e_device_list_changes',
                'indexes': [models.Index(fields=['stream_ordering'], name='e2e_dlc_stream'), models.Index(fields=['user_id', 'stream_ordering'], name='e2e_dlc_user_stream')],
            },
        ),
        migrations.CreateModel(
            name='FallbackKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255)),
                ('device_id', models.CharField(max_length=255)),
                ('algorithm', models.CharField(max_length=128)),
                ('key_id', models.CharField(max_length=255)),
                ('key_json', models.TextField()),
                ('used', models.BooleanField(default=False)),
            ],
            options={
                'db_table': 'e2e_fallback_keys',
                'constraints': [models.UniqueConstraint(fields=('user_id', 'device_id', 'algorithm'), name='e2e_fallback_uniq')],
            },
        ),
        migrations.CreateModel(
            name='KeySignature',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('signer_user_id', models.CharField(max_length=255)),
                ('signer_key_id', models.CharField(max_length=255)),
                ('target_user_id', models.CharField(max_length=255)),
                ('target_key_id', models.CharField(max_length=255)),
                ('signature', models.CharField(max_length=128)),
            ],
            options={
                'db_table': 'e2e_key_signatures',
                'indexes': [models.Index(fields=['target_user_id', 'target_key_id'], name='e2e_sig_target')],
                'constraints': [models.UniqueConstraint(fields=('signer_user_id', 'signer_key_id', 'target_user_id', 'target_key_id'), name='e2e_key_signatures_uniq')],
            },
        ),
        migrations.CreateModel(
            name='OneTimeKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255)),
                ('device_id', models.CharField(max_length=255)),
                ('algorithm', models.CharField(max_length=128)),
                ('key_id', models.CharField(max_length=255)),
                ('key_json', models.TextField()),
            ],
            options={
                'db_table': 'e2e_one_time_keys',
                'indexes': [models.Index(fields=['user_id', 'device_id', 'algorithm', 'id'], name='e2e_otk_claim')],
                'constraints': [models.UniqueConstraint(fields=('user_id', 'device_id', 'algorithm', 'key_id'), name='e2e_otk_uniq')],
            },
        ),
        migrations.CreateModel(
            name='RoomKeyBackup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255)),
                ('algorithm', models.CharField(max_length=255)),
                ('auth_data_json', models.TextField()),
                ('etag', models.BigIntegerField(default=0)),
                ('deleted', models.BooleanField(default=False)),
                ('created_ts', models.BigIntegerField()),
            ],
            options={
                'db_table': 'e2e_room_key_backups',
                'indexes': [models.Index(fields=['user_id', 'deleted'], name='e2e_backup_user')],
            },
        ),
        migrations.CreateModel(
            name='ToDeviceMessage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255)),
                ('device_id', models.CharField(max_length=255)),
                ('sender', models.CharField(max_length=255)),
                ('type', models.CharField(max_length=255)),
                ('content_json', models.TextField()),
                ('stream_ordering', models.BigIntegerField()),
                ('delivered_in', models.BigIntegerField(null=True)),
            ],
            options={
                'db_table': 'e2e_to_device_messages',
                'indexes': [models.Index(fields=['user_id', 'device_id', 'stream_ordering'], name='e2e_to_device_inbox')],
            },
        ),
        migrations.CreateModel(
            name='RoomKeyBackupSession',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('room_id', models.CharField(max_length=255)),
                ('session_id', models.CharField(max_length=255)),
                ('first_message_index', models.BigIntegerField()),
                ('forwarded_count', models.BigIntegerField()),
                ('is_verified', models.BooleanField()),
                ('session_data_json', models.TextField()),
                ('backup', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sessions', to='homeserver.roomkeybackup')),
            ],
            options={
                'db_table': 'e2e_room_key_backup_sessions',
                'constraints': [models.UniqueConstraint(fields=('backup', 'room_id', 'session_id'), name='e2e_backup_session_uniq')],
            },
        ),
    ]
