"""What a launch target declares: its cloud, the offering kinds it launches, what it can do (and
why not), its settings, SSH user, regions, and the one door through which its SDK errors pass.

A target is the unit the rest of provision asks about ("which target launches a TPU on gcp?",
"which SSH user?", "what does this error mean?"); nothing outside a target module decides by a
cloud's name. Adding a cloud is one new module in ``provision/targets/`` (the registry finds it).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provision.errors import ProvisionError
from provision.models import OfferingKind

if TYPE_CHECKING:
    from provision.clouds.base import Provider
    from provision.settings import Settings


@dataclass(frozen=True)
class Feature:
    """Whether a target supports something, and if not, why (``provision up`` prints it when it matters).

    Here rather than with the drivers: the registry is read by ``--help`` and the pricing commands,
    which must not load the cloud drivers' base module."""

    supported: bool
    why_not: str | None = None


class TargetId(str):
    """A launch target's id, as the store and ``--json`` carry it ("aws-ec2").

    Not an enum of every target: each target module declares its own id, so adding a target is
    one new module in this package (the registry finds it). ``value`` reads like an enum's."""

    __slots__ = ()

    @property
    def value(self) -> str:
        return str(self)


class Capability(str, enum.Enum):
    """What a target may or may not do; each target says why when it cannot."""

    GPU = "gpu"
    TPU = "tpu"
    SPOT = "spot"
    AUTOSTOP = "autostop"
    CAPACITY_FAILOVER = "capacity_failover"
    QUOTA_PRECHECK = "quota_precheck"
    IDEMPOTENT_LAUNCH = "idempotent_launch"
    #: more than one node per launch (``--nodes N``)
    NODES = "nodes"
    #: nodes placed close together (placement group, compact resource policy)
    PLACEMENT = "placement"
    #: Elastic Fabric Adapter interfaces on the instance types that have them
    EFA = "efa"
    #: one offering spans several hosts (a multi-host TPU slice)
    MULTI_HOST = "multi_host"


@dataclass(frozen=True)
class Target:
    """One launch target. Pure data plus lazy doors: nothing here imports a cloud SDK."""

    id: TargetId
    cloud: str
    #: the cloud as people name it ("AWS", "Google Cloud")
    cloud_title: str
    #: offering kinds this target launches (an offering of another kind goes to another target)
    kinds: tuple[OfferingKind, ...]
    #: the resource kind of its machines ("instance", "tpu_node")
    machine_kind: str
    capabilities: Mapping[Capability, Feature]
    #: the Settings fields that configure it share this prefix ("aws_", "gcp_")
    settings_prefix: str
    #: the Settings field naming the login user on its machines
    ssh_user_field: str
    #: the Settings field with the regions tried after the offer's own (None: the offer's region only)
    regions_field: str | None
    #: zone -> region (us-east-1a -> us-east-1; us-central1-f -> us-central1)
    zone_to_region: Callable[[str], str]
    #: builds the driver (imports the SDK adapter lazily)
    make_provider: Callable[[Settings], Provider]
    #: any exception from its SDK -> the ProvisionError to show; returns, never raises
    classifier: Callable[[Exception], ProvisionError]
    #: resource kinds whose id the cloud assigns on create (a lost answer leaves only the tag to find it)
    cloud_assigned_ids: frozenset[str] = field(default_factory=frozenset)
    #: what the user passes to choose it, for help and hints
    example: str = ""
    #: the metadata server a node's first boot may ask who it is (provision.cluster.bootstrap.Metadata)
    metadata_server: str = "none"

    def __str__(self) -> str:
        return self.id.value

    def supports(self, cap: Capability) -> Feature:
        return self.capabilities.get(cap, Feature(False, f"{self.id.value} does not declare {cap.value}"))

    def region_of(self, zone: str) -> str:
        return self.zone_to_region(zone)

    def ssh_user(self, settings: Settings) -> str:
        return str(getattr(settings, self.ssh_user_field))

    def default_regions(self, settings: Settings) -> tuple[str, ...]:
        return tuple(getattr(settings, self.regions_field)) if self.regions_field else ()

    def settings_section(self, settings: Settings) -> dict[str, Any]:
        """Its own part of the settings (for ``--json`` diagnostics and docs)."""
        return {k: v for k, v in settings.model_dump().items() if k.startswith(self.settings_prefix)}

    def provider(self, settings: Settings) -> Provider:
        return self.make_provider(settings)

    def knows_name_before_create(self, kind: str) -> bool:
        """Whether a journal row of ``kind`` can be looked up by the name recorded with its intent."""
        return kind not in self.cloud_assigned_ids

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Inside, any SDK exception leaves as the ProvisionError the classifier returns for it."""
        from provision.clouds.base import translating  # the drivers' door: loaded when a call is made

        with translating(self.classifier):
            yield
