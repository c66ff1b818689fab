"""Audit every change made through the admin, whatever the model, with before/after values.

`PalisadeAdminSite.register` mixes `AuditedModelAdmin` into every ModelAdmin (User and Group
included), and the site runs every admin POST in one transaction, so a change and its record
commit together. Covered paths, none of them relying on model signals:
- add / change form: save_model (before) + save_related (after, m2m included);
- inline objects: save_formset (added, changed, deleted inline rows);
- delete view and bulk "delete selected": delete_model / delete_queryset, one record per object;
- any other admin action (queryset.update() included): the selected objects are snapshotted
  before and after the action and every difference is recorded;
- views that save without save_model (e.g. the user password form): log_change fallback.
Field values whose names suggest secrets or message content are replaced by "[redacted]".
"""

from __future__ import annotations

import datetime
import decimal
import functools
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.db import models
from django.db.models.fields.files import FieldFile
from django.http import HttpRequest

from audit.actions import ActorType, AuditAction
from audit.log import FORBIDDEN_DETAIL_KEYS, REDACTED, record

_SECRET_NAME = re.compile(r"password|secret|token|(^|_)key$|content|body", re.IGNORECASE)
MAX_VALUE_CHARS = 1000


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value[:MAX_VALUE_CHARS] if isinstance(value, str) else value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, FieldFile):
        return value.name or ""
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)[:MAX_VALUE_CHARS]


def is_secret_field(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) or name.lower() in FORBIDDEN_DETAIL_KEYS


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The object's concrete field values and many-to-many pks, JSON-safe, secrets redacted."""
    opts = obj._meta
    values: dict[str, Any] = {}
    for f in opts.concrete_fields:
        values[f.name] = _json_value(f.value_from_object(obj))
    if obj.pk is not None:
        for f in opts.many_to_many:
            values[f.name] = sorted(_json_value(o.pk) for o in getattr(obj, f.name).all())
    return {k: (REDACTED if v not in (None, "") else v) if is_secret_field(k) else v
            for k, v in values.items()}


def fresh_snapshot(obj: models.Model) -> dict[str, Any] | None:
    """Snapshot of the stored row (the form has already changed the in-memory object)."""
    stored = type(obj)._base_manager.filter(pk=obj.pk).first()
    return snapshot(stored) if stored is not None else None


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, list[Any]]:
    before = before or {}
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def _key(obj: models.Model) -> str:
    return f"{obj._meta.label_lower}:{obj.pk}"


def _done(request: HttpRequest) -> set[str]:
    if not hasattr(request, "_audit_done"):
        request._audit_done = set()  # type: ignore[attr-defined]
    return request._audit_done  # type: ignore[attr-defined]


def audit_admin_change(request: HttpRequest, action: AuditAction, obj: models.Model,
                       pk: Any = None, **details: Any) -> None:
    pk = obj.pk if pk is None else pk
    label = obj._meta.label_lower
    record(action, actor=request.user.get_username(), actor_type=ActorType.ADMIN,
           target=f"{label}:{pk}"[:255],
           details={"model": label, "pk": _json_value(pk), "object": str(obj)[:200], **details})
    _done(request).add(f"{label}:{pk}")


def audited_action(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Wrap an admin action: diff the selected objects before and after it runs."""

    @functools.wraps(func)
    def run(modeladmin: Any, request: HttpRequest, queryset: models.QuerySet) -> Any:
        before = {o.pk: (o, snapshot(o)) for o in queryset}
        response = func(modeladmin, request, queryset)
        after = {o.pk: o for o in queryset.model._base_manager.filter(pk__in=list(before))}
        for pk, (old, old_values) in before.items():
            if pk not in after:
                audit_admin_change(request, AuditAction.ADMIN_OBJECT_DELETED, old, pk,
                                   admin_action=name, before=old_values)
            elif changes := diff(old_values, snapshot(after[pk])):
                audit_admin_change(request, AuditAction.ADMIN_OBJECT_CHANGED, after[pk],
                                   admin_action=name, changes=changes)
        return response

    return run


class AuditedModelAdmin:
    """Mixed into every registered ModelAdmin by PalisadeAdminSite.register."""

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any,
                   change: bool) -> None:
        if change:
            request._audit_before = fresh_snapshot(obj)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)  # type: ignore[misc]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any,
                     change: bool) -> None:
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        obj = form.instance
        after = snapshot(obj)
        if not change:
            audit_admin_change(request, AuditAction.ADMIN_OBJECT_ADDED, obj, after=after)
        elif changes := diff(getattr(request, "_audit_before", None), after):
            audit_admin_change(request, AuditAction.ADMIN_OBJECT_CHANGED, obj, changes=changes)
        else:
            _done(request).add(_key(obj))  # saved without changes: nothing to record

    def save_formset(self, request: HttpRequest, form: Any, formset: Any,
                     change: bool) -> None:
        touched = [f.instance for f in formset.initial_forms
                   if f.has_changed() or formset._should_delete_form(f)]
        pks = {id(obj): obj.pk for obj in touched}  # deleting sets obj.pk to None
        before = {obj.pk: fresh_snapshot(obj) for obj in touched}
        super().save_formset(request, form, formset, change)  # type: ignore[misc]
        for obj in formset.new_objects:
            audit_admin_change(request, AuditAction.ADMIN_OBJECT_ADDED, obj, after=snapshot(obj))
        for obj, _fields in formset.changed_objects:
            if changes := diff(before.get(obj.pk), snapshot(obj)):
                audit_admin_change(request, AuditAction.ADMIN_OBJECT_CHANGED, obj,
                                   changes=changes)
        for obj in formset.deleted_objects:
            pk = pks.get(id(obj), obj.pk)
            audit_admin_change(request, AuditAction.ADMIN_OBJECT_DELETED, obj, pk,
                               before=before.get(pk))

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        pk, before = obj.pk, snapshot(obj)
        super().delete_model(request, obj)  # type: ignore[misc]
        audit_admin_change(request, AuditAction.ADMIN_OBJECT_DELETED, obj, pk, before=before)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        doomed = [(o, o.pk, snapshot(o)) for o in queryset]
        super().delete_queryset(request, queryset)  # type: ignore[misc]
        for obj, pk, before in doomed:
            audit_admin_change(request, AuditAction.ADMIN_OBJECT_DELETED, obj, pk,
                               before=before)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        return {
            name: (func if name == "delete_selected" else audited_action(func, name), n, desc)
            for name, (func, n, desc) in actions.items()
        }

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        entry = super().log_change(request, obj, message)  # type: ignore[misc]
        if _key(obj) not in _done(request):
            fields = [f for m in (message if isinstance(message, list) else [])
                      for f in m.get("changed", {}).get("fields", [])]
            audit_admin_change(request, AuditAction.ADMIN_OBJECT_CHANGED, obj, changes={
                f: [REDACTED, REDACTED] if is_secret_field(f) else [None, None] for f in fields
            })
        return entry
