"""The compliance app's admin: the effective policy page (the running profile, its settings and
the policies it registered, read-only, for Compliance officers and superusers), the federation
allow/deny entries, and the TI-Messenger federation list status page.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path

from compliance import timlist
from compliance.models import EffectivePolicy, FederationListEntry, TiMessengerFederationList
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


@admin.register(FederationListEntry)
class FederationListEntryAdmin(admin.ModelAdmin):
    """The local allow/deny entries (REQUIREMENTS.md "list source"): Compliance officers add,
    change and delete them; Homeserver admins read them. Every change is audited by the admin
    site (audit/admin_changes.py) and applies in every process within seconds
    (compliance/federation_lists.py)."""

    list_display = ("server", "kind", "note", "added_by", "updated_at")
    list_filter = ("kind",)
    search_fields = ("server", "note")
    fields = ("kind", "server", "note", "added_by", "created_at", "updated_at")
    readonly_fields = ("added_by", "created_at", "updated_at")
    change_list_template = "compliance/federation_entries_change_list.html"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.added_by = request.user.get_username()
        super().save_model(request, obj, form, change)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}),
                                                 "federation_mode": federation_mode()})


def federation_mode() -> str:
    """How the entries combine with the configuration, in one sentence for the officer."""
    cfg = settings.PALISADE.federation
    if not cfg.enabled:
        return "Federation is switched off in the configuration: no server is admitted."
    if timlist.is_active():
        return ("The TI-Messenger federation list is in force: servers on it and on allow "
                "entries are admitted; deny entries refuse a server even when it is listed.")
    if cfg.allow_list is not None:
        return ("An allow-list is in force: only servers on the configured allow_list or on "
                "allow entries are admitted; deny entries always refuse.")
    return ("Open federation (no allow_list configured): every server not denied is admitted; "
            "allow entries have no effect until an allow-list is configured.")


@admin.register(TiMessengerFederationList)
class TiMessengerFederationListAdmin(admin.ModelAdmin):
    """The TI-Messenger federation list status page (REQUIREMENTS.md "What compliance officers
    and auditors need to see"): version, age against the limit, signature result, last fetch,
    last error, incidents, blocked or not. Read-only: the refresh task writes the row."""

    def get_urls(self) -> list[Any]:
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
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return TemplateResponse(request, "compliance/timlist_status.html", {
            **self.admin_site.each_context(request),
            "title": "TI-Messenger federation list",
            "opts": self.model._meta,
            **timlist_status(),
        })


def timlist_status() -> dict[str, Any]:
    from django.utils import timezone

    cfg = timlist.config()
    row = TiMessengerFederationList.objects.filter(pk=1).first()
    snap = timlist.load()
    now = timezone.now()
    age = snap.age(now)
    limit_s = cfg.max_age_hours * 3600
    return {
        "active": timlist.is_active(),
        "cfg": cfg,
        "row": row,
        "domains": len(row.entries) if row is not None and row.version is not None else 0,
        "age_hours": None if age is None else round(age.total_seconds() / 3600, 1),
        "age_percent": None if age is None else min(100, int(age.total_seconds() * 100
                                                             / limit_s)),
        "blocked": timlist.is_active() and snap.is_stale(now),
        "incident_open": row is not None and row.incident_at is not None
        and row.consecutive_failures >= cfg.incident_after_failures,
    }
