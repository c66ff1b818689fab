# Typing, receipts and read marks, presence, push rules, pushers and per-user notifications
# (issue 5).
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0003_media")]

    operations = [
        migrations.CreateModel(
            name='PushRuleSet',
            fields=[
                ('user_id', models.CharField(max_length=255, primary_key=True, serialize=False)),
                ('data', models.JSONField()),
            ],
            options={
                'db_table': 'push_rulesets',
            },
        ),
        migrations.CreateModel(
            name='EventPushAction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255)),
                ('room_id', models.CharField(max_length=255)),
                ('event_id', models.CharField(max_length=255)),
                ('stream_ordering', models.BigIntegerField()),
                ('thread_id', models.CharField(default='main', max_length=255)),
                ('highlight', models.BooleanField(default=False)),
                ('actions', models.JSONField()),
                ('ts', models.BigIntegerField()),
            ],
            options={
                'db_table': 'event_push_actions',
                'indexes': [models.Index(fields=['user_id', 'room_id', 'stream_ordering'], name='epa_user_room'), models.Index(fields=['user_id', 'stream_ordering'], name='epa_user_stream')],
                'constraints': [models.UniqueConstraint(fields=('user_id', 'event_id'), name='epa_user_event_uniq')],
            },
        ),
        migrations.CreateModel(
            name='Presence',
            fields=[
                ('user_id', models.CharField(max_length=255, primary_key=True, serialize=False)),
                ('state', models.CharField(max_length=16)),
                ('status_msg', models.TextField(null=True)),
                ('last_active_ts', models.BigIntegerField()),
                ('stream_ordering', models.BigIntegerField()),
            ],
            options={
                'db_table': 'presence',
                'indexes': [models.Index(fields=['stream_ordering'], name='presence_stream')],
            },
        ),
        migrations.CreateModel(
            name='ReadMark',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255)),
                ('room_id', models.CharField(max_length=255)),
                ('thread_id', models.CharField(default='', max_length=255)),
                ('stream_ordering', models.BigIntegerField()),
            ],
            options={
                'db_table': 'read_marks',
                'constraints': [models.UniqueConstraint(fields=('user_id', 'room_id', 'thread_id'), name='read_marks_uniq')],
            },
        ),
        migrations.CreateModel(
            name='Receipt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('room_id', models.CharField(max_length=255)),
                ('user_id', models.CharField(max_length=255)),
                ('receipt_type', models.CharField(max_length=64)),
                ('thread_id', models.CharField(default='', max_length=255)),
                ('event_id', models.CharField(max_length=255)),
                ('event_stream_ordering', models.BigIntegerField()),
                ('ts', models.BigIntegerField()),
                ('stream_ordering', models.BigIntegerField()),
            ],
            options={
                'db_table': 'receipts',
                'indexes': [models.Index(fields=['room_id', 'stream_ordering'], name='receipts_room_stream')],
                'constraints': [models.UniqueConstraint(fields=('room_id', 'user_id', 'receipt_type', 'thread_id'), name='receipts_uniq')],
            },
        ),
        migrations.CreateModel(
            name='TypingState',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('room_id', models.CharField(max_length=255)),
                ('user_id', models.CharField(max_length=255)),
                ('expires_ts', models.BigIntegerField(default=0)),
                ('stream_ordering', models.BigIntegerField()),
            ],
            options={
                'db_table': 'typing_states',
                'indexes': [models.Index(fields=['expires_ts'], name='typing_expires')],
                'constraints': [models.UniqueConstraint(fields=('room_id', 'user_id'), name='typing_room_user_uniq')],
            },
        ),
        migrations.CreateModel(
            name='Pusher',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('user_id', models.CharField(max_length=255)),
                ('kind', models.CharField(max_length=16)),
                ('app_id', models.CharField(max_length=64)),
                ('pushkey', models.CharField(max_length=512)),
                ('app_display_name', models.CharField(max_length=255)),
                ('device_display_name', models.CharField(max_length=255)),
                ('profile_tag', models.CharField(default='', max_length=255)),
                ('lang', models.CharField(max_length=64)),
                ('data', models.JSONField()),
                ('pushkey_ts', models.BigIntegerField()),
                ('device', models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='homeserver.device')),
            ],
            options={
                'db_table': 'pushers',
                'indexes': [models.Index(fields=['app_id', 'pushkey'], name='pushers_app_key')],
                'constraints': [models.UniqueConstraint(fields=('user_id', 'app_id', 'pushkey'), name='pushers_uniq')],
            },
        ),
    ]
