"""The effective policy page: the running compliance profile, its settings and the policies it
registered, read-only, for Compliance officers (compliance.view_effectivepolicy) and superusers.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path

from compliance.models import EffectivePolicy
from compliance.profiles import active_profile


@admin.register(EffectivePolicy)
class EffectivePolicyAdmin(admin.ModelAdmin):
    def get_urls(self) -> list[Any]:
        """Only the page itself: there are no objects to add, change or delete."""
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])  # read-only: config decides
        active = active_profile()
        return TemplateResponse(request, "compliance/effective_policy.html", {
            **self.admin_site.each_context(request),
            "title": "Effective compliance policy",
            "opts": self.model._meta,
            "profile": active.name,
            "configured": settings.PALISADE.compliance_profile,
            "rows": active.settings.as_rows(),
            "policies": active.policies,
        })
