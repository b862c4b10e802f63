"""Cloud TPU VMs, one host or a slice (driver: provision/clouds/tpu.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision.errors import ProvisionError
from provision.models import OfferingKind
from provision.targets._base import Capability, Feature, Target, TargetId
from provision.targets.gcp_gce import gcp_region_of

if TYPE_CHECKING:
    from provision.clouds.base import Provider
    from provision.settings import Settings


def _provider(settings: Settings) -> Provider:
    from provision.clouds.tpu import TpuProvider

    return TpuProvider(settings)


def _classify(exc: Exception) -> ProvisionError:
    from provision.clouds.gcp import translate

    return translate(exc, service="Cloud TPU")


TARGET = Target(
    id=TargetId("gcp-tpu"),
    cloud="gcp",
    cloud_title="Google Cloud",
    kinds=(OfferingKind.TPU_VM,),
    machine_kind="tpu_node",
    capabilities={
        Capability.GPU: Feature(False, "use --gpu without --tpu for Compute Engine GPU VMs"),
        Capability.TPU: Feature(True),
        Capability.SPOT: Feature(True),
        Capability.AUTOSTOP: Feature(
            False,
            "TPU VMs have no max-run-duration: the guest powers off at the autostop time, "
            "but the node still exists until `provision down`",
        ),
        Capability.CAPACITY_FAILOVER: Feature(True),
        Capability.QUOTA_PRECHECK: Feature(False, "quota errors are reported with where to ask for more"),
        Capability.IDEMPOTENT_LAUNCH: Feature(True),
        Capability.NODES: Feature(
            False, "a TPU slice's size says how many hosts it has; --nodes is for GPU VMs"
        ),
        Capability.PLACEMENT: Feature(False, "a TPU slice is placed by Cloud TPU itself"),
        Capability.EFA: Feature(False, "EFA is an AWS network adapter"),
        # every host of a slice is recorded with its index and address and gets its own ssh alias
        Capability.MULTI_HOST: Feature(True),
    },
    settings_prefix="gcp_",
    ssh_user_field="gcp_ssh_user",
    regions_field=None,
    zone_to_region=gcp_region_of,
    make_provider=_provider,
    classifier=_classify,
    example="--cloud gcp --tpu v5e-8",
    metadata_server="tpu",
)
