"""Federation: the outbound queue."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0007_federation_ingest")]

    operations: list = []
