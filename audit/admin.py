"""Admin pages of the audit log: read-only for everyone, superusers included.

Records, policy decisions, checkpoints and keys can be listed, filtered, searched and viewed;
no one can add, change or delete them here (and the database refuses it anyway).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from audit.actions import ActorType, AuditAction, AuditCategory
from audit.models import AuditCheckpoint, AuditKey, AuditRecord, PolicyDecision


class ReadOnlyAdmin(admin.ModelAdmin):
    actions = None
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CategoryFilter(admin.SimpleListFilter):
    title = "category"
    parameter_name = "category"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(c.value, c.label) for c in AuditCategory]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in {c.value for c in AuditCategory}:
            low, high = AuditCategory(self.value()).action_range
            return queryset.filter(action__gte=low, action__lt=high)
        return queryset


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"
    category: AuditCategory | None = None

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(a.value), a.label) for a in AuditAction
                if self.category is None or a.category == self.category]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(action=int(self.value())) if (self.value() or "").isdigit() \
            else queryset


class PolicyActionFilter(ActionFilter):
    title = "decision"
    category = AuditCategory.POLICY


class ActorTypeFilter(admin.SimpleListFilter):
    title = "actor type"
    parameter_name = "actor_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(t.value, t.value.replace("_", " ").capitalize()) for t in ActorType]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(actor_type=self.value()) if self.value() else queryset


def _short(value: str, n: int = 12) -> str:
    return format_html('<code title="{}">{}…</code>', value, value[:n]) if value else "-"


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    list_display = ("seq", "time", "category_badge", "action_name", "actor_display", "target",
                    "source_addr", "request")
    list_display_links = ("seq", "action_name")
    list_filter = (CategoryFilter, ActionFilter, ActorTypeFilter, "ts")
    search_fields = ("actor", "target", "request_id", "source_addr", "details")
    search_help_text = "Search actor, target, request id, source address and details"
    date_hierarchy = "ts"
    fields = ("seq", "ts", "category_badge", "action_name", "actor_display", "target",
              "request_id", "source_addr", "pretty_details", "prev_hash", "hash")
    readonly_fields = fields

    @admin.display(description="time (UTC)", ordering="ts")
    def time(self, obj: AuditRecord) -> str:
        return obj.ts.strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="category", ordering="action")
    def category_badge(self, obj: AuditRecord) -> str:
        return format_html('<span class="pal-badge pal-{}">{}</span>', obj.category.value,
                           obj.category.label)

    @admin.display(description="action", ordering="action")
    def action_name(self, obj: AuditRecord) -> str:
        return obj.action_label

    @admin.display(description="actor", ordering="actor")
    def actor_display(self, obj: AuditRecord) -> str:
        return format_html('{} <span class="pal-muted">{}</span>', obj.actor,
                           obj.actor_type.replace("_", " "))

    @admin.display(description="request")
    def request(self, obj: AuditRecord) -> str:
        return _short(obj.request_id, 8)

    @admin.display(description="details")
    def pretty_details(self, obj: AuditRecord) -> str:
        return format_html('<pre class="pal-json">{}</pre>',
                           json.dumps(obj.details_dict, indent=2, ensure_ascii=False))


@admin.register(PolicyDecision)
class PolicyDecisionAdmin(AuditRecordAdmin):
    list_display = ("time", "decision", "hook", "policy", "actor", "target", "reason")
    list_display_links = ("time", "decision")
    list_filter = (PolicyActionFilter, "ts")
    search_help_text = "Search user, target, hook, policy and reason"

    @admin.display(description="decision", ordering="action")
    def decision(self, obj: AuditRecord) -> str:
        denied = obj.action == AuditAction.POLICY_DENIED
        return format_html('<span class="pal-badge pal-{}">{}</span>',
                           "denied" if denied else "rewritten",
                           "Denied" if denied else "Rewritten")

    @admin.display(description="hook")
    def hook(self, obj: AuditRecord) -> str:
        return obj.details_dict.get("hook", "-")

    @admin.display(description="policy")
    def policy(self, obj: AuditRecord) -> str:
        return obj.details_dict.get("policy", "-")

    @admin.display(description="reason")
    def reason(self, obj: AuditRecord) -> str:
        return obj.details_dict.get("reason", "-")


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("seq", "ts", "head", "key_id", "sig")
    date_hierarchy = "ts"
    fields = ("seq", "ts", "server_name", "head_hash", "key_id", "signature")
    readonly_fields = fields

    @admin.display(description="head hash")
    def head(self, obj: AuditCheckpoint) -> str:
        return _short(obj.head_hash, 16)

    @admin.display(description="signature")
    def sig(self, obj: AuditCheckpoint) -> str:
        return _short(obj.signature, 16)


@admin.register(AuditKey)
class AuditKeyAdmin(ReadOnlyAdmin):
    list_display = ("key_id", "public_key", "created")
    readonly_fields = ("key_id", "public_key", "created")
