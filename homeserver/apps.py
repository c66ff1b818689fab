from django.apps import AppConfig


class HomeserverConfig(AppConfig):
    name = "homeserver"
    verbose_name = "Homeserver"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Device hooks of end-to-end encryption (device-list changes, per-device key cleanup).
        from homeserver.services.e2ee import hooks

        hooks.register()

        # Keys and to-device messages of other servers' users go over federation.
        from homeserver.services.e2ee import remote
        from homeserver.services.e2ee.federation_backend import FederationE2EE

        remote.backend = FederationE2EE()
