"""Cloud drivers: one module per cloud behind the Provider protocol in base.py.

Nothing here imports boto3 or google-cloud-* at import time; each driver does it lazily. Which
driver serves a launch is the launch target's business (provision/targets/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provision.clouds.base import Provider
    from provision.plan import Plan
    from provision.settings import Settings


def provider_for_plan(plan: Plan, settings: Settings) -> Provider:
    """The driver of the plan's launch target."""
    from provision import targets

    return targets.get(plan.target).provider(settings)
