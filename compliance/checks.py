"""`manage.py check --deploy`: a TI-M profile without the TI-Messenger federation list weakens a
compliance guarantee (REQUIREMENTS.md A_25534, A_25537), so a deployment check refuses it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def ti_messenger_list_configured(app_configs: Any = None,
                                 **kwargs: Any) -> list[checks.CheckMessage]:
    from compliance.profiles import PROFILES

    palisade = settings.PALISADE
    tim = palisade.federation.ti_messenger_list
    if not PROFILES[palisade.compliance_profile].ti_messenger_federation_list \
            or not palisade.federation.enabled:
        return []
    if tim.enabled is False or not tim.url or not tim.trust_anchors:
        return [checks.Error(
            f"compliance_profile {palisade.compliance_profile!r} federates only with servers on "
            "the TI-Messenger federation list, but [federation.ti_messenger_list] has no url "
            "and trust_anchors (or is switched off)",
            hint="Set url and trust_anchors (docs/federation.md \"Federation lists\"), or "
                 "[federation] enabled = false for a server that does not federate.",
            id="palisade.compliance.E001")]
    return []
