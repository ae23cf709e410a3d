"""`manage.py check` (and every server start) warns when the simulators are on outside DEBUG."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=False)
def simulators_outside_debug(app_configs, **kwargs) -> list[Warning]:
    if settings.SIMULATORS_ENABLED and not settings.DEBUG:
        return [
            Warning(
                "SIMULATORS_ENABLED is on with DEBUG off: /simulator/ serves a fake IntaSend and router.",
                hint="Unset SIMULATORS_ENABLED in production.",
                id="cloudpilot.W001",
            )
        ]
    return []
