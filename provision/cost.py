"""Job cost estimates: how long a job takes and what it costs on every matching offering.

Pure: takes catalog offerings and returns numbers. Time comes either from the user (``hours``)
or from the work: ``flops`` (or the 6*N*D rule for transformers, Kaplan et al. 2020,
arXiv 2001.08361) divided by the cluster's dense BF16 peak times the model FLOPs utilisation:

    hours = FLOP / (accelerators x peak_TFLOPS x 1e12 x MFU x 3600)
    cost  = hours x price_per_hour x nodes  +  disk_GB x $/GB-month x hours / 730
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from envcheck.knowledge import gpus
from provision.catalog import Offering, Rate
from provision.errors import UsageError

#: hours in the billing month AWS and GCP use for $/GB-month storage
HOURS_PER_MONTH = 730.0
DEFAULT_MFU = 0.4
DEFAULT_DISK_GB = 100.0


@dataclass(frozen=True)
class GpuRequest:
    """``--gpu A100:8``: an accelerator name (or family) and an optional total count."""

    name: str
    count: int | None = None

    def specs(self) -> list[gpus.GpuSpec]:
        """Accelerators the name can mean; raises UsageError when none."""
        found = gpus.search(self.name)
        if not found:
            known = ", ".join(s.name for s in gpus.all_specs())
            raise UsageError(f"unknown GPU {self.name!r}", hint=f"known accelerators: {known}")
        return found


_GPU_RE = re.compile(r"^\s*(?P<name>[^:]+?)\s*(?::\s*(?P<count>\S+))?\s*$")


def parse_gpu(text: str) -> GpuRequest:
    """Parse ``NAME[:COUNT]``; bad input raises UsageError."""
    m = _GPU_RE.match(text or "")
    if not m:
        raise UsageError(f"bad --gpu {text!r}: expected NAME[:COUNT], e.g. A100:8")
    count = m.group("count")
    if count is None:
        return GpuRequest(m.group("name"))
    if not count.isdigit() or int(count) < 1:
        raise UsageError(f"bad GPU count in {text!r}: expected a whole number >= 1")
    return GpuRequest(m.group("name"), int(count))


@dataclass(frozen=True)
class Work:
    """What the job needs: wall hours on given hardware, or an amount of compute."""

    hours: float | None = None
    flops: float | None = None
    mfu: float = DEFAULT_MFU
    basis: str = ""

    @classmethod
    def build(
        cls,
        *,
        hours: float | None = None,
        flops: float | None = None,
        params: float | None = None,
        tokens: float | None = None,
        mfu: float = DEFAULT_MFU,
    ) -> Work:
        """Validate one of: hours, flops, or params and tokens (6*N*D)."""
        if not 0 < mfu <= 1:
            raise UsageError(f"--mfu {mfu} must be in (0, 1]: it is the fraction of peak FLOP/s achieved")
        given = [x is not None for x in (hours, flops, params if params is not None else tokens)]
        if sum(given) != 1:
            raise UsageError("give exactly one of --hours, --flops, or --params with --tokens")
        if (params is None) != (tokens is None):
            raise UsageError("--params and --tokens go together (6 x params x tokens FLOP)")
        if hours is not None:
            if not hours > 0:
                raise UsageError(f"--hours {hours} must be > 0")
            return cls(hours=hours, mfu=mfu, basis=f"{hours:g} h of wall time (given)")
        if flops is not None:
            if not flops > 0:
                raise UsageError(f"--flops {flops} must be > 0")
            return cls(flops=flops, mfu=mfu, basis=f"{flops:.3g} FLOP (given) at MFU {mfu:g}")
        assert params is not None and tokens is not None
        if not (params > 0 and tokens > 0):
            raise UsageError("--params and --tokens must be > 0")
        total = 6.0 * params * tokens
        return cls(
            flops=total,
            mfu=mfu,
            basis=f"6 x N x D = 6 x {params:.3g} x {tokens:.3g} = {total:.3g} FLOP "
            f"(Kaplan et al. 2020) at MFU {mfu:g}",
        )


@dataclass(frozen=True)
class Estimate:
    """One offering's answer: time, and cost on-demand and spot (None where not sold)."""

    offering: Offering
    nodes: int
    accelerators: int
    hours: float
    cluster_peak_tflops: float | None
    on_demand_cost: float | None
    spot_cost: float | None
    storage_cost: float

    @property
    def best_cost(self) -> float:
        """The cheapest way to buy this shape (spot when offered)."""
        costs = [c for c in (self.on_demand_cost, self.spot_cost) if c is not None]
        return min(costs)

    def to_dict(self) -> dict[str, object]:
        """Raw numbers for --json."""
        o = self.offering
        return {
            "cloud": o.cloud,
            "instance_type": o.instance_type,
            "region": o.region,
            "accelerator": o.accelerator,
            "accelerators": self.accelerators,
            "nodes": self.nodes,
            "hours": self.hours,
            "cluster_peak_tflops": self.cluster_peak_tflops,
            "price_on_demand_per_hour": o.price_on_demand * self.nodes if o.price_on_demand else None,
            "price_spot_per_hour": o.price_spot * self.nodes if o.price_spot else None,
            "on_demand_cost_usd": self.on_demand_cost,
            "spot_cost_usd": self.spot_cost,
            "storage_cost_usd": self.storage_cost,
            "as_of": o.as_of,
            "source": o.source,
        }


@dataclass(frozen=True)
class CostReport:
    """Every estimate, cheapest first, plus what was assumed and what was left out and why."""

    work: Work
    estimates: list[Estimate]
    assumptions: list[str]
    skipped: list[str] = field(default_factory=list)

    @property
    def cheapest(self) -> Estimate | None:
        """Lowest total cost (spot where offered)."""
        return min(self.estimates, key=lambda e: e.best_cost, default=None)

    @property
    def fastest(self) -> Estimate | None:
        """Shortest time; ties broken by cost."""
        return min(self.estimates, key=lambda e: (e.hours, e.best_cost), default=None)


def _node_counts(offers: Sequence[Offering], want: int | None) -> list[tuple[Offering, int]]:
    """(offering, nodes) pairs that give exactly ``want`` accelerators.

    One node when the shape has ``want`` accelerators; for bigger requests, several nodes of the
    largest shape of that accelerator on that cloud (how DAWNBench's 4x/8x/16x p3.16xlarge ran).
    """
    if want is None:
        return [(o, 1) for o in offers]
    largest: dict[tuple[str, str, str], int] = {}
    for o in offers:
        key = (o.cloud, o.accelerator, o.region)
        largest[key] = max(largest.get(key, 0), o.accelerator_count)
    out = []
    for o in offers:
        if o.accelerator_count == want:
            out.append((o, 1))
        elif (
            want > o.accelerator_count == largest[(o.cloud, o.accelerator, o.region)]
            and want % o.accelerator_count == 0
        ):
            out.append((o, want // o.accelerator_count))
    return out


def filter_offers(
    offers: Iterable[Offering],
    *,
    gpu: str | None = None,
    clouds: Sequence[str] = (),
    region: str | None = None,
) -> list[Offering]:
    """Offerings of the named accelerator family, cloud(s) and region."""
    wanted = {s.name for s in GpuRequest(gpu).specs()} if gpu else None
    cl = {c.lower() for c in clouds}
    return [
        o
        for o in offers
        if (wanted is None or o.accelerator in wanted)
        and (not cl or o.cloud in cl)
        and (region is None or o.region.lower() == region.lower())
    ]


def estimate(
    offers: Iterable[Offering],
    work: Work,
    *,
    gpu: GpuRequest | None = None,
    clouds: Sequence[str] = (),
    region: str | None = None,
    disk_gb: float = DEFAULT_DISK_GB,
    storage: dict[str, Rate] | None = None,
) -> CostReport:
    """Estimate ``work`` on every matching offering; raises UsageError for impossible requests."""
    if work.hours is not None and gpu is None:
        raise UsageError("--hours needs --gpu NAME:COUNT (which hardware runs for that long?)")
    if disk_gb < 0:
        raise UsageError(f"--disk {disk_gb} must be >= 0")
    pool = filter_offers(offers, gpu=gpu.name if gpu else None, clouds=clouds, region=region)
    if not pool:
        raise UsageError("no catalog offering matches", hint="try `provision gpus` to see what is offered")
    pairs = _node_counts(pool, gpu.count if gpu else None)
    if not pairs:
        counts = sorted({o.accelerator_count for o in pool})
        raise UsageError(
            f"no offering has {gpu.count if gpu else '?'} x {gpu.name if gpu else '?'}",
            hint=f"available counts: {', '.join(map(str, counts))} (or multiples of the largest)",
        )
    storage = storage or {}
    skipped: list[str] = []
    estimates: list[Estimate] = []
    for o, nodes in pairs:
        spec = gpus.lookup(o.accelerator)
        n_acc = o.accelerator_count * nodes
        peak = spec.peak_tflops if spec else None
        cluster_peak = peak * n_acc if peak else None
        if work.hours is not None:
            hours = work.hours
        elif cluster_peak:
            assert work.flops is not None
            hours = work.flops / (cluster_peak * 1e12 * work.mfu * 3600.0)
        else:
            skipped.append(
                f"{o.cloud} {o.instance_type}: no peak TFLOPS for {o.accelerator} in the GPU specs"
            )
            continue
        rate = storage.get(o.cloud)
        disk = disk_gb * rate.value * hours / HOURS_PER_MONTH * nodes if rate else 0.0
        if rate is None and disk_gb:
            skipped.append(f"{o.cloud}: no storage price in the catalog; storage not included")
        od = o.price_on_demand * nodes * hours + disk if o.price_on_demand else None
        sp = o.price_spot * nodes * hours + disk if o.price_spot else None
        estimates.append(Estimate(o, nodes, n_acc, hours, cluster_peak, od, sp, disk))
    if not estimates:
        raise UsageError(
            f"cannot time this work: {skipped[0]}", hint="give --hours for that hardware, or pick another GPU"
        )
    estimates.sort(key=lambda e: (e.best_cost, e.hours))
    return CostReport(work, estimates, _assumptions(work, disk_gb, storage), sorted(set(skipped)))


def _assumptions(work: Work, disk_gb: float, storage: dict[str, Rate]) -> list[str]:
    out = [f"work: {work.basis}"]
    if work.flops is not None:
        out.append(
            "time = FLOP / (accelerators x dense BF16 peak x MFU); peaks from envcheck's GPU specs "
            "(GeForce figures normalised to FP32 accumulate); multi-node scaling assumed linear"
        )
    if disk_gb:
        rates = ", ".join(f"{k} ${r.value:g}" for k, r in sorted(storage.items()))
        out.append(
            f"storage: {disk_gb:g} GB per node kept for the job, $/GB-month ({rates}), "
            f"{HOURS_PER_MONTH:g} h/month"
        )
    out.append(
        "spot/interruptible prices assume no interruptions "
        "(AWS reports >20% interruption rates for V100 spot)"
    )
    out.append(
        "excluded: data transfer, reserved/committed discounts (typically 30-60% off on-demand), taxes"
    )
    return out


def per_pflop_hour(price_per_hour: float, count: int, peak_tflops: float | None) -> float | None:
    """$ per dense-BF16 PFLOP-hour of peak: the price of the shape divided by its peak PFLOP/s."""
    if not peak_tflops:
        return None
    return price_per_hour / (count * peak_tflops / 1000.0)


def fmt_hours(hours: float) -> str:
    """Human duration: 45 min, 7.2 h, 3.1 d, 2.4 y."""
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    if hours < 24 * 365 * 2:
        return f"{hours / 24:.1f} d"
    return f"{hours / 24 / 365:.1f} y"
