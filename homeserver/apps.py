from django.apps import AppConfig


class HomeserverConfig(AppConfig):
    name = "homeserver"
    verbose_name = "Homeserver"
    default_auto_field = "django.db.models.BigAutoField"
