"""Federation: remote device lists and EDUs."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0008_federation_outbound")]

    operations: list = []
