"""provision's shared data: catalog offerings (what can be rented, at what price).

Every price carries its ``source`` and ``as_of`` date; the CLI shows the date next to it.

A plain frozen dataclass, not a pydantic model: ``provision gpus`` builds ~1,400 of them on every
run, and pydantic's import and schema build alone cost more than the rest of the command. The
checks it made (and stricter ones: no NaN or infinite number) run in ``__post_init__``, so an
Offering that exists is valid however it was made (catalog CSV, refresh, an offers file).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields


class OfferingError(ValueError):
    """One field of an offering is missing or invalid: ``field`` names it, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise OfferingError(name, f"must be text, got {value!r}")


def _number(name: str, value: object, *, positive: bool = False) -> float:
    """A finite float from a number or its text (CSV cells are text)."""
    if type(value) is float:
        number = value
    elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise OfferingError(name, f"must be a number, got {value!r}")
    else:
        try:
            number = float(value)
        except ValueError:
            raise OfferingError(name, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise OfferingError(name, f"must be a finite number, got {value!r}")
    if positive and not number > 0:
        raise OfferingError(name, f"must be greater than 0, got {value!r}")
    return number


def _whole(name: str, value: object, *, least: int) -> int:
    """An integer from an int, an integral float (8.0) or its text ("8")."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        as_float = _number(name, value)
        if not as_float.is_integer():
            raise OfferingError(name, f"must be a whole number, got {value!r}")
        number = int(as_float)
    if number < least:
        raise OfferingError(name, f"must be at least {least}, got {value!r}")
    return number


class OfferingKind(str, enum.Enum):
    """How an offering is launched: a VM with GPUs, or a Cloud TPU VM (one host or a slice)."""

    VM = "vm"
    TPU_VM = "tpu-vm"


@dataclass(frozen=True, slots=True, kw_only=True)
class Offering:
    """One rentable machine shape in one region, with its prices per hour in USD."""

    #: aws, gcp, lambda, runpod, azure
    cloud: str
    #: g5.xlarge, a2-highgpu-1g, v5litepod-8, ...
    instance_type: str
    #: canonical accelerator name as in envcheck's GPU specs ("A10G", "H100 SXM", "TPU v5e")
    accelerator: str
    #: at least 1
    accelerator_count: int
    #: memory per accelerator, GB
    accelerator_memory_gb: float | None = None
    vcpus: int | None = None
    ram_gb: float | None = None
    region: str
    #: > 0 when present
    price_on_demand: float | None = None
    #: > 0 when present
    price_spot: float | None = None
    #: "vm" or "tpu-vm" (how it is launched)
    kind: str = "vm"
    source: str
    as_of: str

    def __post_init__(self) -> None:
        # coerce in place ("8" -> 8, 80 -> 80.0) and refuse what cannot be a price list row; the
        # common case (already the right type) stays cheap: the catalog makes ~1,400 per run
        put = object.__setattr__
        for name in _TEXT:
            _text(name, getattr(self, name))
        count = self.accelerator_count
        if type(count) is not int or count < 1:
            put(self, "accelerator_count", _whole("accelerator_count", count, least=1))
        vcpus = self.vcpus
        if vcpus is not None and (type(vcpus) is not int or vcpus < 0):
            put(self, "vcpus", _whole("vcpus", vcpus, least=0))
        for name, positive in _NUMBERS:
            value = getattr(self, name)
            if value is not None:
                put(self, name, _number(name, value, positive=positive))

    @classmethod
    def from_dict(cls, data: object) -> Offering:
        """An offering from a mapping of field names (CSV row, JSON object); unknown keys are ignored.

        Raises OfferingError (a ValueError) naming the first missing or invalid field."""
        if not isinstance(data, Mapping):
            raise OfferingError("offering", f"must be an object of fields, got {data!r}")
        given = {}
        for name in _NAMES:
            value = data.get(name)
            if value is not None:
                given[name] = value
            elif name in _REQUIRED:
                raise OfferingError(name, "missing")
        return cls(**given)

    def to_dict(self) -> dict[str, object]:
        """Every field by name, in declaration order (the catalog CSV's columns)."""
        return {name: getattr(self, name) for name in _NAMES}


_TEXT = ("cloud", "instance_type", "accelerator", "region", "kind", "source", "as_of")
_NUMBERS = (
    ("accelerator_memory_gb", False),
    ("ram_gb", False),
    ("price_on_demand", True),
    ("price_spot", True),
)
_NAMES = tuple(f.name for f in fields(Offering))
_REQUIRED = frozenset(
    f.name for f in fields(Offering) if f.default is MISSING and f.default_factory is MISSING
)
