"""AWS EC2 GPU instances (driver: provision/clouds/aws.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision.errors import ProvisionError
from provision.models import OfferingKind
from provision.targets._base import Capability, Feature, Target, TargetId

if TYPE_CHECKING:
    from provision.clouds.base import Provider
    from provision.settings import Settings

_ZONE_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _provider(settings: Settings) -> Provider:
    from provision.clouds.aws import AwsProvider

    return AwsProvider(settings)


def _classify(exc: Exception) -> ProvisionError:
    from provision.clouds.aws import translate

    return translate(exc)


TARGET = Target(
    id=TargetId("aws-ec2"),
    cloud="aws",
    cloud_title="AWS",
    kinds=(OfferingKind.VM,),
    machine_kind="instance",
    capabilities={
        Capability.GPU: Feature(True),
        Capability.TPU: Feature(False, "TPUs exist only on Google Cloud; use --cloud gcp --tpu"),
        Capability.SPOT: Feature(True),
        Capability.AUTOSTOP: Feature(True),
        Capability.CAPACITY_FAILOVER: Feature(True),
        Capability.QUOTA_PRECHECK: Feature(
            False,
            "quota errors name the quota and the request command; no "
            "pre-check because Service Quotas needs extra IAM permissions",
        ),
        Capability.IDEMPOTENT_LAUNCH: Feature(True),
        Capability.NODES: Feature(True),
        Capability.PLACEMENT: Feature(True),
        # where provision/cluster/data/aws_instance_network.csv says the type has it (one interface)
        Capability.EFA: Feature(True),
        Capability.MULTI_HOST: Feature(False, "an EC2 offering is one host"),
    },
    settings_prefix="aws_",
    ssh_user_field="aws_ssh_user",
    regions_field="aws_regions",
    zone_to_region=lambda zone: zone.rstrip(_ZONE_LETTERS),
    make_provider=_provider,
    classifier=_classify,
    # instance ids are assigned by EC2; key pairs and security groups are created under our names
    cloud_assigned_ids=frozenset({"instance"}),
    example="--cloud aws --gpu A10G:1",
    metadata_server="aws",
)
