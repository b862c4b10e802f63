"""Cloud drivers: one module per cloud behind the Provider protocol in base.py.

Nothing here imports boto3 or google-cloud-* at import time; each driver does it lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provision.clouds.base import Plan, Provider
    from provision.settings import Settings

CLOUDS = ("aws", "gcp")


def provider_for(cloud: str, settings: Settings, *, tpu: bool = False) -> Provider:
    """The driver for ``cloud`` (``tpu`` selects Cloud TPU VMs on gcp)."""
    from provision.errors import UsageError

    if cloud == "aws":
        from provision.clouds.aws import AwsProvider

        return AwsProvider(settings)
    if cloud == "gcp" and tpu:
        from provision.clouds.tpu import TpuProvider

        return TpuProvider(settings)
    if cloud == "gcp":
        from provision.clouds.gcp import GcpProvider

        return GcpProvider(settings)
    raise UsageError(f"unknown cloud {cloud!r}", hint=f"choose one of: {', '.join(CLOUDS)}")


def provider_for_plan(plan: Plan, settings: Settings) -> Provider:
    return provider_for(plan.cloud, settings, tpu=plan.kind == "tpu-vm")
