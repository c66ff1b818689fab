"""{% staff_sso_providers as sso %}: the providers enabled for staff SSO, for the admin login
page (idp/templates/idp/admin_login.html)."""

from typing import Any
from urllib.parse import quote

from django import template

from idp.oidc.providers import public_url, sso_config, staff_providers

register = template.Library()


@register.simple_tag
def staff_sso_providers() -> dict[str, Any]:
    return {
        "providers": [{"id": p.id, "name": p.name,
                       "url": public_url(f"_palisade/admin/sso/{quote(p.id)}")}
                      for p in staff_providers()],
        "password_login": sso_config().admin_password_login,
    }
