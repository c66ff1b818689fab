# Owned by one feature while several are built at once; the operations for its models go here.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0004_ephemeral_push")]
    operations = []
