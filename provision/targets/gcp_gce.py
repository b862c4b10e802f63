"""Compute Engine GPU VMs (driver: provision/clouds/gcp.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision.errors import ProvisionError
from provision.models import OfferingKind
from provision.targets._base import Capability, Feature, Target, TargetId

if TYPE_CHECKING:
    from provision.clouds.base import Provider
    from provision.settings import Settings


def gcp_region_of(zone: str) -> str:
    """us-central1-f -> us-central1 (Compute Engine and Cloud TPU zones alike)."""
    return zone.rsplit("-", 1)[0]


def _provider(settings: Settings) -> Provider:
    from provision.clouds.gcp import GcpProvider

    return GcpProvider(settings)


def _classify(exc: Exception) -> ProvisionError:
    from provision.clouds.gcp import translate

    return translate(exc)


TARGET = Target(
    id=TargetId("gcp-gce"),
    cloud="gcp",
    cloud_title="Google Cloud",
    kinds=(OfferingKind.VM,),
    machine_kind="instance",
    capabilities={
        Capability.GPU: Feature(True),
        Capability.TPU: Feature(False, "Cloud TPU VMs are the gcp-tpu target (--tpu)"),
        Capability.SPOT: Feature(True),
        Capability.AUTOSTOP: Feature(True),
        Capability.CAPACITY_FAILOVER: Feature(True),
        Capability.QUOTA_PRECHECK: Feature(
            False,
            "quota errors name the metric and where to ask for more; regions.get "
            "quotas are not checked before launching",
        ),
        Capability.IDEMPOTENT_LAUNCH: Feature(True),
        Capability.NODES: Feature(True),
        # a COLLOCATED group placement policy; Compute Engine accepts it for some machine series only
        Capability.PLACEMENT: Feature(True),
        Capability.EFA: Feature(False, "EFA is an AWS network adapter"),
        Capability.MULTI_HOST: Feature(False, "a Compute Engine VM is one host"),
    },
    settings_prefix="gcp_",
    ssh_user_field="gcp_ssh_user",
    regions_field=None,
    zone_to_region=gcp_region_of,
    make_provider=_provider,
    classifier=_classify,
    example="--cloud gcp --gpu L4:1",
    metadata_server="gce",
)
