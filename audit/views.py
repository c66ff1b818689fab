"""The chain status and export pages of the admin (thin: the work is in chain_verify/export)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from audit.actions import ActorType, AuditAction
from audit.chain_verify import verify_chain
from audit.checkpoints import audit_signing_key, config_path, read_sink
from audit.export import export_bundle
from audit.forms import ExportForm
from audit.log import record
from audit.models import AuditCheckpoint, AuditRecord
from homeserver.protocol.signing import public_key_base64


def _require(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


def _context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    key = audit_signing_key()
    return {**admin.site.each_context(request), "title": title, "key_id": key.key_id,
            "public_key": public_key_base64(key), **extra}


def _sink_checkpoints() -> list[dict[str, Any]]:
    path = settings.PALISADE.audit.sink_path
    return read_sink(config_path(path)) if path and config_path(path).exists() else []


def chain_status(request: HttpRequest) -> HttpResponse:
    _require(request, "audit.verify_auditrecord")
    if request.method == "POST":
        result = verify_chain(held_checkpoints=_sink_checkpoints())
        record(AuditAction.AUDIT_VERIFIED, actor=request.user.get_username(),
               actor_type=ActorType.ADMIN, details=result.as_details())
        (messages.success if result.ok else messages.error)(request, result.summary())
        return redirect("admin:audit_status")
    head = AuditRecord.objects.order_by("-seq").first()
    checkpoint = AuditCheckpoint.objects.order_by("-seq").first()
    last = AuditRecord.objects.filter(action=AuditAction.AUDIT_VERIFIED).order_by("-seq").first()
    cfg = settings.PALISADE.audit
    sunk = _sink_checkpoints()
    return TemplateResponse(request, "audit/chain_status.html", _context(
        request, "Audit chain status",
        head=head, checkpoint=checkpoint,
        behind=(head.seq - checkpoint.seq) if head and checkpoint else None,
        last=last, last_result=last.details_dict if last else None,
        sink_path=config_path(cfg.sink_path) if cfg.sink_path else None,
        sink_count=len(sunk), cfg=cfg,
    ))


def export(request: HttpRequest) -> HttpResponse:
    _require(request, "audit.export_auditrecord")
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            bundle = export_bundle(form.to_filter(), actor=request.user.get_username(),
                                   actor_type=ActorType.ADMIN)
        except ValueError as e:
            messages.error(request, str(e))
        else:
            response = HttpResponse(bundle.zip_bytes(), content_type="application/zip")
            response["Content-Disposition"] = f'attachment; filename="{bundle.name}.zip"'
            return response
    recent = AuditRecord.objects.filter(action=AuditAction.AUDIT_EXPORTED).order_by("-seq")[:10]
    return TemplateResponse(request, "audit/export.html", _context(
        request, "Export for auditors", form=form, recent=recent,
    ))
