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


class FederationListEntry(models.Model):
    """One admin-managed allow or deny entry (REQUIREMENTS.md A_25534, "list source": the operator
    manages a local allow-list and deny-list in the admin UI). `server` is a server name as
    written in ids, with a port where the server uses one, or "*.example.org" for example.org
    and its subdomains (compliance/federation_access.py `_matches`)."""

    class Kind(models.TextChoices):
        ALLOW = "allow", "Allow"
        DENY = "deny", "Deny"

    kind = models.CharField(max_length=5, choices=Kind.choices)
    server = models.CharField(
        "server", max_length=255,
        help_text='A server name ("hospital.example", "matrix.example:8448") or a wildcard '
                  '("*.kv.example" covers kv.example and its subdomains).')
    note = models.TextField(blank=True, help_text="Why the entry exists (ticket, contract, ...).")
    added_by = models.CharField(max_length=150, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "federation list entry"
        verbose_name_plural = "federation allow/deny list"
        ordering = ("kind", "server")
        constraints = [models.UniqueConstraint(fields=("kind", "server"),
                                               name="compliance_fed_entry_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.server}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from compliance.federation_patterns import normalise_pattern

        try:
            self.server = normalise_pattern(self.server)
        except ValueError as e:
            raise ValidationError({"server": str(e)}) from None


class TiMessengerFederationList(models.Model):
    """The TI-Messenger federation list this server holds (one row, pk=1) and the state of
    keeping it current (REQUIREMENTS.md A_25537; compliance/timlist/). Written by the refresh
    task only; read-only in the admin."""

    version = models.BigIntegerField(null=True)
    # [{"domain", "telematikID", "isInsurance", "ik", "timAnbieter"}], as verified.
    entries = models.JSONField(default=list)
    # "" when `domain` holds plain domain names, else the hash algorithm ("SHA-256").
    hash_algorithm = models.CharField(max_length=16, blank=True)
    fetched_at = models.DateTimeField(null=True)  # when this version was downloaded
    confirmed_at = models.DateTimeField(null=True)  # last time the server said it is current
    signature_alg = models.CharField(max_length=8, blank=True)
    signer = models.CharField(max_length=500, blank=True)  # subject of the x5c leaf
    signature_result = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True)
    last_error = models.CharField(max_length=1000, blank=True)
    last_error_at = models.DateTimeField(null=True)
    consecutive_failures = models.IntegerField(default=0)
    incident_at = models.DateTimeField(null=True)  # the last incident raised
    # The refresh period the unknown-domain re-fetches below were counted in.
    refetch_period = models.BigIntegerField(default=0)
    refetched_domains = models.JSONField(default=list)
    last_refetch_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "TI-Messenger federation list"
        verbose_name_plural = "TI-Messenger federation list"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"TI-Messenger federation list v{self.version}"
