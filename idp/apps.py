from django.apps import AppConfig


class IdpConfig(AppConfig):
    name = "idp"
    verbose_name = "Identity providers (OIDC)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin

        from idp.services import login_types
        from idp.services.staff import SsoAwareLoginForm

        login_types.register()
        # Staff SSO buttons on the admin login page, and local passwords switchable off.
        admin.site.login_template = "idp/admin_login.html"
        admin.site.login_form = SsoAwareLoginForm
