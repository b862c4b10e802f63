"""What `provision gpus` shows, decided once for the table and the JSON: summaries and region groups.

Pure functions over catalog offerings. A *shape* is one (cloud, instance type, accelerator, count);
the catalog holds one row per region a shape is sold in, and by default a shape is shown once, at
its cheapest region, with how many other regions sell it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from envcheck.knowledge import gpus
from provision.catalog import Offering
from provision.catalog._files import age_days, as_of_date

#: prices older than this many days are flagged, with the command that refreshes them
STALE_DAYS = 30


def price(o: Offering, spot: bool) -> float | None:
    """The hourly price in the chosen market."""
    return o.price_spot if spot else o.price_on_demand


def interconnect(o: Offering) -> str:
    """How the accelerators of one machine talk: NVLink / Infinity Fabric modules, PCIe cards, TPU ICI."""
    spec = gpus.lookup(o.accelerator)
    if spec is None:
        return "-"
    if spec.is_tpu:
        return "ICI"
    if spec.pcie_lanes is None:  # SXM / OAM module on a baseboard
        return "Infinity Fabric" if spec.vendor == "AMD" else "NVLink"
    gen = spec.pcie_gen if spec.pcie_gen and spec.pcie_gen.isdigit() else "?"
    return f"PCIe Gen{gen}"


@dataclass(frozen=True)
class ShapeGroup:
    """One shape at its cheapest region, and the other regions that sell it."""

    best: Offering
    regions: tuple[Offering, ...]

    @property
    def other_regions(self) -> int:
        """How many more regions sell this shape."""
        return len(self.regions) - 1


def group_regions(offers: Iterable[Offering], spot: bool) -> list[ShapeGroup]:
    """Offers grouped by shape, each group led by its cheapest region in the chosen market."""
    groups: dict[tuple[str, str, str, int], list[Offering]] = {}
    for o in offers:
        groups.setdefault((o.cloud, o.instance_type, o.accelerator, o.accelerator_count), []).append(o)
    out = []
    for rows in groups.values():
        rows.sort(key=lambda o: (price(o, spot) or math.inf, o.region))
        out.append(ShapeGroup(rows[0], tuple(rows)))
    return out


@dataclass(frozen=True)
class GpuSummary:
    """One accelerator across the catalog: counts sold, memory, interconnect, cheapest prices."""

    accelerator: str
    memory_gb: tuple[float, ...]
    counts: tuple[int, ...]
    clouds: tuple[str, ...]
    interconnects: tuple[str, ...]
    peak_tflops: float | None
    cheapest_on_demand: Offering | None
    cheapest_spot: Offering | None
    as_of: tuple[str, ...]

    @staticmethod
    def per_accelerator(o: Offering | None, spot: bool) -> float | None:
        """$ per accelerator-hour of ``o`` in the market."""
        if o is None:
            return None
        p = price(o, spot)
        return p / o.accelerator_count if p else None

    def to_dict(self) -> dict[str, object]:
        """Raw numbers for --json."""
        od, sp = self.cheapest_on_demand, self.cheapest_spot
        return {
            "accelerator": self.accelerator,
            "memory_gb": list(self.memory_gb),
            "counts": list(self.counts),
            "clouds": list(self.clouds),
            "interconnect": list(self.interconnects),
            "peak_tflops": self.peak_tflops,
            "cheapest_on_demand_per_accelerator_hour": self.per_accelerator(od, False),
            "cheapest_on_demand_where": f"{od.cloud} {od.instance_type} {od.region}" if od else None,
            "cheapest_spot_per_accelerator_hour": self.per_accelerator(sp, True),
            "cheapest_spot_where": f"{sp.cloud} {sp.instance_type} {sp.region}" if sp else None,
            "as_of": list(self.as_of),
        }


def summarize(offers: Sequence[Offering]) -> list[GpuSummary]:
    """One summary per accelerator, in the GPU specs' order (consumer, workstation, data centre, TPU)."""
    by_acc: dict[str, list[Offering]] = {}
    for o in offers:
        by_acc.setdefault(o.accelerator, []).append(o)
    order = {s.name: i for i, s in enumerate(gpus.all_specs())}
    out = []
    for name in sorted(by_acc, key=lambda n: order.get(n, len(order))):
        rows = by_acc[name]
        spec = gpus.lookup(name)

        def cheapest(spot: bool, rows: list[Offering] = rows) -> Offering | None:
            priced = [o for o in rows if price(o, spot)]
            return min(priced, key=lambda o: (price(o, spot) or 0) / o.accelerator_count, default=None)

        out.append(
            GpuSummary(
                name,
                tuple(sorted({o.accelerator_memory_gb or 0 for o in rows})),
                tuple(sorted({o.accelerator_count for o in rows})),
                tuple(sorted({o.cloud for o in rows})),
                tuple(sorted({interconnect(o) for o in rows})),
                spec.peak_tflops if spec else None,
                cheapest(False),
                cheapest(True),
                tuple(sorted({o.as_of for o in rows}, key=lambda a: as_of_date(a) or as_of_date("1970"))),  # type: ignore[arg-type,return-value]
            )
        )
    return out


@dataclass(frozen=True)
class Freshness:
    """How old the prices behind an answer are."""

    oldest: str | None
    newest: str | None
    max_age_days: int | None

    @property
    def stale(self) -> bool:
        """True when some price is older than STALE_DAYS."""
        return self.max_age_days is not None and self.max_age_days > STALE_DAYS

    def warning(self) -> str | None:
        """One line for stderr when stale, naming the dates and the command that refreshes them."""
        if not self.stale:
            return None
        span = self.oldest if self.oldest == self.newest else f"{self.oldest} to {self.newest}"
        return (
            f"warning: these prices are as of {span} (up to {self.max_age_days} days old); "
            "refresh them with `provision catalog refresh`"
        )

    def to_dict(self) -> dict[str, object]:
        """For --json."""
        return {
            "oldest_as_of": self.oldest,
            "newest_as_of": self.newest,
            "max_age_days": self.max_age_days,
            "stale": self.stale,
            "stale_after_days": STALE_DAYS,
        }


def freshness(as_ofs: Iterable[str]) -> Freshness:
    """Oldest and newest ``as_of`` of a set of prices, and the largest age in days."""
    values = sorted(set(as_ofs), key=lambda a: as_of_date(a) or as_of_date("1970"))  # type: ignore[arg-type,return-value]
    if not values:
        return Freshness(None, None, None)
    ages = [d for d in (age_days(a) for a in values) if d is not None]
    return Freshness(values[0], values[-1], max(ages) if ages else None)
