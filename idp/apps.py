from django.apps import AppConfig


class IdpConfig(AppConfig):
    name = "idp"
    verbose_name = "Identity providers (OIDC)"
    default_auto_field = "django.db.models.BigAutoField"
