"""Federation: inbound /send (lead)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("homeserver", "0006_federation")]

    operations: list = []
