"""Rig parts (CPUs, boards, PSUs, RAM, NVMe, allowances) and other priced facts from the data files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, TypeVar

from provision.catalog import _files
from provision.errors import ProvisionError


@dataclass(frozen=True)
class Part:
    """What every priced part has: a name, a dated price and where the figures come from."""

    name: str
    price_usd: float
    price_date: str
    source: str
    as_of: str
    #: False when a figure in the row could not be confirmed from a retrieved source
    verified: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Cpu(Part):
    """A CPU and its platform's lane budget."""

    platform: str = ""
    cores: int = 0
    threads: int = 0
    gpu_lanes: int = 0
    total_lanes: int = 0
    pcie_gen: int = 0
    power_w: float = 0
    memory_channels: int = 0
    max_memory_gb: int = 0


@dataclass(frozen=True)
class Board(Part):
    """A motherboard: how many GPUs it takes, at what spacing and link width."""

    platform: str = ""
    memory_kind: str = ""
    gpu_slots: int = 0
    slot_pitch: int = 0
    lanes_per_gpu: int = 0
    pcie_gen: int = 0
    memory_slots: int = 0
    max_memory_gb: int = 0
    m2_slots: int = 0


@dataclass(frozen=True)
class Psu(Part):
    """A power supply; ``atx3_w`` is the load up to which it rides through ATX 3.0 transients."""

    watts: int = 0
    atx3_w: int = 0
    efficiency: str = ""


@dataclass(frozen=True)
class RamKit(Part):
    """A memory kit; ``kind`` matches a board's ``memory_kind`` (ddr5-udimm, ddr5-rdimm, ddr4-rdimm)."""

    kind: str = ""
    modules: int = 0
    module_gb: int = 0

    @property
    def total_gb(self) -> int:
        """Capacity of the whole kit."""
        return self.modules * self.module_gb


@dataclass(frozen=True)
class Drive(Part):
    """An NVMe drive."""

    capacity_tb: float = 0


@dataclass(frozen=True)
class Allowance(Part):
    """Case, cooler and fans as one line per platform class (desktop, hedt)."""

    platform_class: str = ""


@dataclass(frozen=True)
class Parts:
    """Every rig part in the catalog."""

    cpus: tuple[Cpu, ...]
    boards: tuple[Board, ...]
    psus: tuple[Psu, ...]
    ram: tuple[RamKit, ...]
    drives: tuple[Drive, ...]
    other: tuple[Allowance, ...]


P = TypeVar("P", bound=Part)


def _coerce(cls: type[P], row: dict[str, str], where: str) -> P:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        raw = (row.get(f.name) or "").strip()
        try:
            if f.name == "verified":
                kwargs[f.name] = raw.lower() in {"yes", "true", "1"}
            elif f.type in ("int",):
                kwargs[f.name] = int(raw)
            elif f.type in ("float",):
                kwargs[f.name] = float(raw)
            else:
                kwargs[f.name] = raw
        except ValueError as exc:
            raise ProvisionError(f"{where}: bad {f.name} {raw!r}", hint="fix or delete the row") from exc
    part = cls(**kwargs)
    if part.price_usd <= 0 or not part.source or not part.as_of:
        raise ProvisionError(f"{where}: needs a positive price, a source and an as_of date")
    return part


def _load(cls: type[P], name: str) -> tuple[P, ...]:
    data = _files.read(name, allow_override=False)
    return tuple(_coerce(cls, row, f"{name} row {i}") for i, row in enumerate(data.rows, start=2))


@lru_cache(maxsize=1)
def load_parts() -> Parts:
    """All rig parts, validated (a broken row raises ProvisionError naming file and row)."""
    return Parts(
        cpus=_load(Cpu, "parts_cpus.csv"),
        boards=_load(Board, "parts_boards.csv"),
        psus=_load(Psu, "parts_psus.csv"),
        ram=_load(RamKit, "parts_ram.csv"),
        drives=_load(Drive, "parts_storage.csv"),
        other=_load(Allowance, "parts_other.csv"),
    )


@dataclass(frozen=True)
class Rate:
    """A dated unit price: storage $/GB-month per cloud, electricity $/kWh per region."""

    key: str
    label: str
    value: float
    source: str
    as_of: str


@lru_cache(maxsize=1)
def storage_rates() -> dict[str, Rate]:
    """Block storage $/GB-month by cloud."""
    rows = _files.read("storage_prices.csv", allow_override=False).rows
    return {
        r["cloud"]: Rate(r["cloud"], r["kind"], float(r["usd_per_gb_month"]), r["source"], r["as_of"])
        for r in rows
    }


@lru_cache(maxsize=1)
def electricity_rates() -> dict[str, Rate]:
    """Electricity $/kWh by region label."""
    rows = _files.read("electricity.csv", allow_override=False).rows
    return {
        r["region"]: Rate(r["region"], r["region"], float(r["usd_per_kwh"]), r["source"], r["as_of"])
        for r in rows
    }


@dataclass(frozen=True)
class PowerLimits:
    """The driver's power-limit range for one GPU (nvidia-smi "Min/Max Power Limit")."""

    name: str
    min_w: float
    max_w: float
    source: str
    as_of: str


@lru_cache(maxsize=1)
def power_limits() -> dict[str, PowerLimits]:
    """Driver power-limit ranges by GPU spec name."""
    rows = _files.read("gpu_power_limits.csv", allow_override=False).rows
    return {
        r["name"]: PowerLimits(
            r["name"], float(r["min_power_limit_w"]), float(r["max_power_limit_w"]), r["source"], r["as_of"]
        )
        for r in rows
    }
