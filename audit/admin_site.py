"""Palisade's admin site: branded, audited, with the audit pages for the roles.

- `register` mixes AuditedModelAdmin into every ModelAdmin, so every change made through the
  admin is audited whatever the model (see audit/admin_changes.py); for the user model it also
  stops non-superusers from granting groups, permissions or superuser status.
- every admin view that changes state (any method but GET/HEAD/OPTIONS), login and logout run
  in one transaction, so a change and its audit record commit or roll back together.
- extra pages: chain status (audit.verify_auditrecord) and export (audit.export_auditrecord).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse

from audit.actions import ActorType, AuditAction
from audit.admin_changes import AuditedModelAdmin
from audit.log import record

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ESCALATION_FIELDS = ("is_superuser", "groups", "user_permissions")


def atomic_writes(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def run(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method in SAFE_METHODS:
            return view(request, *args, **kwargs)
        with transaction.atomic():
            return view(request, *args, **kwargs)

    return run


class NoPrivilegeEscalation:
    """Only superusers may change who is superuser or which groups/permissions a user has, and
    only they may change or delete a superuser or a role holder (no password-reset takeover)."""

    def _privileged(self, request: HttpRequest, obj: Any) -> bool:
        return obj is not None and not request.user.is_superuser and obj.pk != request.user.pk \
            and (obj.is_superuser or obj.groups.exists())

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._privileged(request, obj) and \
            super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._privileged(request, obj) and \
            super().has_delete_permission(request, obj)  # type: ignore[misc]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if obj is not None and not request.user.is_superuser:
            fields += tuple(f for f in ESCALATION_FIELDS if f not in fields)
        return fields


class PalisadeAdminSite(admin.AdminSite):
    site_header = "Palisade"
    site_title = "Palisade administration"
    index_title = "Administration"
    enable_nav_sidebar = False  # wide audit tables need the width

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        admin_class = admin_class or admin.ModelAdmin
        models = [model_or_iterable] if isinstance(model_or_iterable, type) \
            else list(model_or_iterable)
        for model in models:
            cls = admin_class
            if model is get_user_model() and not issubclass(cls, NoPrivilegeEscalation):
                cls = type(f"Safe{cls.__name__}", (NoPrivilegeEscalation, cls), {})
            if not issubclass(cls, AuditedModelAdmin):
                cls = type(f"Audited{cls.__name__}", (AuditedModelAdmin, cls), {})
            super().register(model, cls, **options)

    def admin_view(self, view: Callable[..., HttpResponse], cacheable: bool = False) -> Any:
        return super().admin_view(atomic_writes(view), cacheable)

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return atomic_writes(super().login)(request, extra_context)

    def logout(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return atomic_writes(super().logout)(request, extra_context)

    def password_change(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().password_change(request, extra_context)
        if request.method == "POST" and response.status_code == 302:
            name = request.user.get_username()
            record(AuditAction.PASSWORD_CHANGED, actor=name, actor_type=ActorType.ADMIN,
                   target=name, details={"via": "admin"})
        return response

    def get_urls(self) -> list[Any]:
        from audit import views

        return [
            path("audit/status/", self.admin_view(views.chain_status), name="audit_status"),
            path("audit/export/", self.admin_view(views.export), name="audit_export"),
            *super().get_urls(),
        ]

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        app_list = super().get_app_list(request, app_label)
        pages = [
            ("Chain status", "audit_status", "audit.verify_auditrecord"),
            ("Export for auditors", "audit_export", "audit.export_auditrecord"),
        ]
        for app in app_list:
            if app["app_label"] == "audit":
                app["models"][:0] = [
                    {"name": name, "object_name": url_name, "perms": {"view": True},
                     "admin_url": reverse(f"{self.name}:{url_name}"), "add_url": None,
                     "view_only": True}
                    for name, url_name, perm in pages if request.user.has_perm(perm)
                ]
        return app_list
