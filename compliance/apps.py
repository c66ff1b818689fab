from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance policies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the configured profile's policies (docs/compliance.md) in every process."""
        from django.conf import settings

        from compliance import checks, federation_access  # noqa: F401 - checks register
        from compliance.profiles import activate_profile

        palisade = settings.PALISADE
        activate_profile(palisade.compliance_profile, palisade.compliance)
        # The federation allow-list applies under every profile.
        federation_access.register_policies()
