"""Federation: remote media cache."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0009_federation_edus")]

    operations: list = []
