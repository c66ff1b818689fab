"""Settings every test shares."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def audit_sink_in_tmp(settings, tmp_path_factory):
    """Checkpoints written by test databases go to a temporary sink, never to the developer's
    data/audit_checkpoints.jsonl (where they would confuse a later `audit verify`)."""
    sink = tmp_path_factory.getbasetemp() / "audit_checkpoints.jsonl"
    settings.PALISADE = settings.PALISADE.model_copy(
        update={"audit": settings.PALISADE.audit.model_copy(update={"sink_path": str(sink)})}
    )
