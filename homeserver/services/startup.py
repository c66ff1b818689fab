"""What `palisade serve` does once at start, before it forks its workers."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from audit.actions import AuditAction
from audit.log import record_system
from homeserver.version import __version__


def record_config_loaded() -> None:
    """Audit the effective configuration (as its SHA-256, never its secrets) in its own
    transaction: which config, profile and server name this process group runs with."""
    config = settings.PALISADE
    with transaction.atomic():
        record_system(AuditAction.CONFIG_LOADED, target=config.server_name, details={
            "config_sha256": config.fingerprint(),
            "compliance_profile": config.compliance_profile,
            "server_name": config.server_name,
            "version": __version__,
        })
