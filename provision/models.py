"""provision's shared data: catalog offerings (what can be rented, at what price).

Every price carries its ``source`` and ``as_of`` date; the CLI shows the date next to it.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field


class OfferingKind(str, enum.Enum):
    """How an offering is launched: a VM with GPUs, or a Cloud TPU VM (one host or a slice)."""

    VM = "vm"
    TPU_VM = "tpu-vm"


class Offering(BaseModel):
    """One rentable machine shape in one region, with its prices per hour in USD."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    #: aws, gcp, lambda, runpod, azure
    cloud: str
    #: g5.xlarge, a2-highgpu-1g, v5litepod-8, ...
    instance_type: str
    #: canonical accelerator name as in envcheck's GPU specs ("A10G", "H100 SXM", "TPU v5e")
    accelerator: str
    accelerator_count: int = Field(ge=1)
    #: memory per accelerator, GB
    accelerator_memory_gb: float | None = None
    vcpus: int | None = None
    ram_gb: float | None = None
    region: str
    price_on_demand: float | None = Field(default=None, gt=0)
    price_spot: float | None = Field(default=None, gt=0)
    #: "vm" or "tpu-vm" (how it is launched)
    kind: str = "vm"
    source: str
    as_of: str
