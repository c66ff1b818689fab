"""No tables: `EffectivePolicy` is the admin's handle on the running profile (compliance/admin.py)
and carries its one permission, `compliance.view_effectivepolicy`, which the Compliance officer
group receives with the rest of the compliance app (audit/roles.py)."""

from django.db import models


class EffectivePolicy(models.Model):
    class Meta:
        managed = False
        db_table = "compliance_effective_policy"  # never created nor queried
        default_permissions = ("view",)
        verbose_name = "effective policy"
        verbose_name_plural = "effective policy"

    def __str__(self) -> str:
        return "effective policy"
