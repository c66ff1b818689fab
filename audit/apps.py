from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    default = True
    name = "audit"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit import signals
        from audit.roles import on_post_migrate

        signals.connect()
        # Not limited to sender=self: other apps' permissions exist only after their own
        # post_migrate, and the sync is idempotent.
        post_migrate.connect(on_post_migrate, dispatch_uid="audit.roles.sync")


class PalisadeAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with Palisade's site: every registered model is audited."""

    default = False  # AdminConfig says True; "audit" itself must stay AuditConfig
    default_site = "audit.admin_site.PalisadeAdminSite"
