"""Job cost estimates: how long a job takes, whether it fits, and what it costs on every offering.

Pure: takes catalog offerings and returns numbers. The models, each stated with its source:

- work: ``flops`` given, or the 6*N*D rule for dense transformers (Kaplan et al. 2020, arXiv
  2001.08361), or wall ``hours`` on hardware the user names;
- time: FLOP / (accelerators x dense BF16 peak x MFU x scaling efficiency);
- memory (``provision.train_memory``): 16 bytes per parameter of training state plus activations;
  shapes that cannot hold it get more nodes, or are reported as infeasible;
- scaling: linear up to ``SCALING_KNEE`` accelerators (the MFU is an at-scale figure: Llama 2 7B's
  184,320 A100 GPU-hours imply 39 % on ~2k GPUs), then ``SCALING_PER_DOUBLING`` per doubling
  (MLPerf Training v4.0 GPT-3: 11,616 H100 ran 14.9x faster than 512, i.e. 0.91 per doubling);
- nodes: as few as memory allows, more until the job meets the deadline; several nodes only for
  full 8-GPU SXM/OAM machines (sold with a cluster fabric) and TPU slices; PCIe cards and partial
  machines stay on one machine.

    cost = hours x price_per_hour x nodes + disk_GB x hosts x $/GB-month x hours / 730
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from envcheck.knowledge import gpus
from provision.catalog import Offering
from provision.errors import UsageError
from provision.models import OfferingKind
from provision.train_memory import MemoryModel

if TYPE_CHECKING:
    from provision.catalog import Rate

#: hours in the billing month AWS and GCP use for $/GB-month storage
HOURS_PER_MONTH = 730.0
DEFAULT_MFU = 0.4
DEFAULT_DISK_GB = 100.0
DEFAULT_DEADLINE_HOURS = 30 * 24.0
#: accelerators up to which the stated MFU already includes data-parallel overhead
SCALING_KNEE = 1024
#: throughput kept per doubling beyond the knee (MLPerf Training v4.0 GPT-3 175B, H100 entries:
#: 512 chips 51.3 min, 11,616 chips 3.44 min -> 14.9x for 22.7x -> 0.91 per doubling)
SCALING_PER_DOUBLING = 0.91
SCALING_SOURCE = "MLPerf Training v4.0 GPT-3 (512 vs 11,616 H100: 14.9x faster for 22.7x chips)"
#: most nodes a plan may use (a large reservation, not a frontier cluster)
MAX_NODES = 512
#: input bounds: anything outside is a typo or an attack, not a job
MAX_HOURS = 1e6
MAX_FLOPS = 1e30
MAX_PARAMS = 1e14
MAX_TOKENS = 1e17
MAX_DISK_GB = 1e7


def finite(
    name: str, value: float, *, low: float = 0.0, high: float = math.inf, low_ok: bool = False
) -> float:
    """``value`` when it is a finite number in range, else UsageError naming the option."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise UsageError(f"{name} {value} must be a finite number")
    if value < low or (value == low and not low_ok) or value > high:
        lo = ">=" if low_ok else ">"
        raise UsageError(f"{name} {value:g} must be {lo} {low:g} and <= {high:g}")
    return float(value)


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([hdw]?)\s*$", re.I)


def parse_duration(text: str) -> float:
    """``"72h"``, ``"30d"``, ``"2w"`` or plain hours -> hours; bad input raises UsageError."""
    m = _DURATION.match(text or "")
    if not m:
        raise UsageError(f"--deadline {text!r}: expected a duration such as 72h, 30d or 2w")
    hours = float(m.group(1)) * {"": 1, "h": 1, "d": 24, "w": 168}[m.group(2).lower()]
    return finite("--deadline", hours, high=MAX_HOURS)


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
    if not count.isdigit() or not 1 <= int(count) <= 1_000_000:
        raise UsageError(f"bad GPU count in {text!r}: expected a whole number >= 1")
    return GpuRequest(m.group("name"), int(count))


@dataclass(frozen=True)
class Work:
    """What the job needs: wall hours on given hardware, or an amount of compute (and its model size)."""

    hours: float | None = None
    flops: float | None = None
    mfu: float = DEFAULT_MFU
    basis: str = ""
    #: parameters, when known: sizes the training state that must fit in accelerator memory
    params: float | None = None
    tokens: float | None = None

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
        """Validate one of: hours, flops, or params and tokens (6*N*D). ``params`` may join hours/flops."""
        mfu = finite("--mfu", mfu, high=1.0)
        if params is not None:
            params = finite("--params", params, high=MAX_PARAMS)
        if tokens is not None:
            tokens = finite("--tokens", tokens, high=MAX_TOKENS)
        given = [x is not None for x in (hours, flops, tokens)]
        if sum(given) != 1 and not (params is not None and sum(given) == 0):
            raise UsageError("give exactly one of --hours, --flops, or --params with --tokens")
        if tokens is not None and params is None:
            raise UsageError("--params and --tokens go together (6 x params x tokens FLOP)")
        if hours is not None:
            hours = finite("--hours", hours, high=MAX_HOURS)
            return cls(hours=hours, mfu=mfu, params=params, basis=f"{hours:g} h of wall time (given)")
        if flops is not None:
            flops = finite("--flops", flops, high=MAX_FLOPS)
            return cls(flops=flops, mfu=mfu, params=params, basis=f"{flops:.3g} FLOP (given) at MFU {mfu:g}")
        if tokens is None:
            raise UsageError("--params needs --tokens (or --hours / --flops) to say how much work")
        assert params is not None
        total = 6.0 * params * tokens
        return cls(
            flops=total,
            mfu=mfu,
            params=params,
            tokens=tokens,
            basis=f"6 x N x D = 6 x {params:.3g} x {tokens:.3g} = {total:.3g} FLOP "
            f"(Kaplan et al. 2020) at MFU {mfu:g}",
        )


def scaling_efficiency(accelerators: int) -> float:
    """Fraction of linear throughput kept at ``accelerators`` (see the module docstring)."""
    if accelerators <= SCALING_KNEE:
        return 1.0
    return float(SCALING_PER_DOUBLING ** math.log2(accelerators / SCALING_KNEE))


def hosts_per_node(o: Offering) -> int:
    """Machines one offering unit runs on: TPU slices span hosts (4 chips each beyond a single host)."""
    if o.kind != OfferingKind.TPU_VM:
        return 1
    spec = gpus.lookup(o.accelerator)
    single_host = 8 if spec and spec.name in {"TPU v5e", "TPU v6e"} else 4
    return 1 if o.accelerator_count <= single_host else math.ceil(o.accelerator_count / 4)


#: accelerators per machine from which a GPU shape is planned across machines
MULTI_NODE_MIN_ACCELERATORS = 8


def multi_node_capable(o: Offering) -> bool:
    """Whether plans may put this shape on several machines.

    Full machines of SXM/OAM modules (8 or more per machine) are what clouds sell with a cluster
    fabric (EFA, InfiniBand, GPUDirect-TCPX), and TPU slices join over DCN (Multislice); PCIe cards
    and partial machines (a single GH200, 1-4 H100s) have no such fabric, so they are planned on one
    machine only.
    """
    spec = gpus.lookup(o.accelerator)
    if spec is None:
        return False
    return spec.is_tpu or (spec.pcie_lanes is None and o.accelerator_count >= MULTI_NODE_MIN_ACCELERATORS)


@dataclass(frozen=True)
class Estimate:
    """One plan: an offering times ``nodes``, its time, and its cost on-demand and spot."""

    offering: Offering
    nodes: int
    accelerators: int
    hours: float
    cluster_peak_tflops: float | None
    on_demand_cost: float | None
    spot_cost: float | None
    storage_cost: float
    efficiency: float = 1.0
    within_deadline: bool = True
    #: GB of accelerator memory each accelerator needs for the training state (None: unknown)
    memory_per_accelerator_gb: float | None = None
    why_nodes: str = ""

    @property
    def best_cost(self) -> float:
        """The cheapest way to buy this plan (spot when offered)."""
        return min(c for c in (self.on_demand_cost, self.spot_cost) if c is not None)

    @property
    def sort_cost(self) -> float:
        """On-demand when sold (spot assumes no interruptions), else spot."""
        return self.on_demand_cost if self.on_demand_cost is not None else self.best_cost

    @property
    def accelerator_hours(self) -> float:
        """Accelerator-hours the plan consumes (GPU-hours, TPU chip-hours)."""
        return self.hours * self.accelerators

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
            "accelerator_hours": self.accelerator_hours,
            "scaling_efficiency": self.efficiency,
            "within_deadline": self.within_deadline,
            "memory_per_accelerator_gb": self.memory_per_accelerator_gb,
            "why_nodes": self.why_nodes,
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
class Infeasible:
    """An offering that cannot run the job, and why."""

    offering: Offering
    reason: str


@dataclass(frozen=True)
class CostReport:
    """Feasible plans (cheapest within the deadline first), infeasible shapes, assumptions, omissions."""

    work: Work
    estimates: list[Estimate]
    assumptions: list[str]
    skipped: list[str] = field(default_factory=list)
    infeasible: list[Infeasible] = field(default_factory=list)
    deadline_hours: float | None = None
    calibration: list[str] = field(default_factory=list)

    @property
    def cheapest(self) -> Estimate | None:
        """The first plan: cheapest on-demand among those that meet the deadline."""
        return self.estimates[0] if self.estimates else None

    @property
    def cheapest_spot(self) -> Estimate | None:
        """Cheapest spot plan within the deadline (assumes no interruptions)."""
        spot = [e for e in self.estimates if e.spot_cost is not None and e.within_deadline]
        return min(spot, key=lambda e: e.spot_cost or math.inf, default=None)

    @property
    def fastest(self) -> Estimate | None:
        """Shortest time; ties broken by cost."""
        return min(self.estimates, key=lambda e: (e.hours, e.sort_cost), default=None)


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


def _largest_shapes(offers: Sequence[Offering]) -> dict[tuple[str, str, str], int]:
    largest: dict[tuple[str, str, str], int] = {}
    for o in offers:
        key = (o.cloud, o.accelerator, o.region)
        largest[key] = max(largest.get(key, 0), o.accelerator_count)
    return largest


@dataclass(frozen=True)
class _Sizing:
    """How estimate() sizes each plan."""

    work: Work
    memory: MemoryModel | None
    deadline: float | None
    fixed_count: int | None


def _hours(work: Work, acc: int, peak: float) -> tuple[float, float]:
    eff = scaling_efficiency(acc)
    assert work.flops is not None
    return work.flops / (acc * peak * 1e12 * work.mfu * eff * 3600.0), eff


def _size(o: Offering, peak: float, largest: int, s: _Sizing) -> tuple[int, str] | Infeasible:
    """Nodes for one offering: the fewest that hold the state, then enough to meet the deadline."""
    per = o.accelerator_count
    can_scale = per == largest and multi_node_capable(o)
    if s.fixed_count is not None:
        if s.fixed_count == per:
            nodes = 1
        elif can_scale and s.fixed_count > per and s.fixed_count % per == 0:
            nodes = s.fixed_count // per
        else:
            return Infeasible(o, f"not sold as {s.fixed_count} accelerators")
        if s.memory and not s.memory.fits(nodes * per, o.accelerator_memory_gb or 0):
            need = s.memory.per_accelerator_gb(nodes * per)
            return Infeasible(
                o, f"{need:,.0f} GB per accelerator needed, {o.accelerator_memory_gb:g} GB available"
            )
        return nodes, "as requested"
    min_nodes, why = 1, "one machine"
    if s.memory:
        need_acc = s.memory.min_accelerators(o.accelerator_memory_gb or 0)
        if need_acc is None:
            return Infeasible(o, "activations alone exceed its memory")
        if need_acc > per:
            if not can_scale:
                tail = "PCIe cards are planned on one machine" if per == largest else "see the larger shapes"
                return Infeasible(
                    o, f"needs {need_acc} x {o.accelerator_memory_gb:g} GB for the training state; {tail}"
                )
            min_nodes = math.ceil(need_acc / per)
            why = f"{min_nodes} nodes to hold the training state"
        if min_nodes > MAX_NODES:
            return Infeasible(o, f"needs {min_nodes} nodes to hold the state (limit {MAX_NODES})")
    if s.work.flops is None or s.deadline is None or not can_scale:
        return min_nodes, why
    hours, _ = _hours(s.work, min_nodes * per, peak)
    if hours <= s.deadline:
        return min_nodes, why
    lo, hi = min_nodes, MAX_NODES
    if _hours(s.work, hi * per, peak)[0] > s.deadline:
        return hi, f"{MAX_NODES} nodes (the limit) still miss the deadline"
    while lo < hi:
        mid = (lo + hi) // 2
        if _hours(s.work, mid * per, peak)[0] <= s.deadline:
            hi = mid
        else:
            lo = mid + 1
    return lo, f"{lo} nodes to finish within the deadline"


def estimate(
    offers: Iterable[Offering],
    work: Work,
    *,
    gpu: GpuRequest | None = None,
    clouds: Sequence[str] = (),
    region: str | None = None,
    disk_gb: float = DEFAULT_DISK_GB,
    storage: dict[str, Rate] | None = None,
    deadline_hours: float | None = DEFAULT_DEADLINE_HOURS,
) -> CostReport:
    """Plan ``work`` on every matching offering; raises UsageError for impossible requests."""
    if work.hours is not None and (gpu is None or gpu.count is None):
        raise UsageError("--hours needs --gpu NAME:COUNT (which hardware runs for that long?)")
    disk_gb = finite("--disk", disk_gb, high=MAX_DISK_GB, low_ok=True)
    if deadline_hours is not None:
        deadline_hours = finite("--deadline", deadline_hours, high=MAX_HOURS)
    pool = filter_offers(offers, gpu=gpu.name if gpu else None, clouds=clouds, region=region)
    if not pool:
        raise UsageError("no catalog offering matches", hint="try `provision gpus` to see what is offered")
    storage = storage or {}
    memory = MemoryModel(work.params) if work.params else None
    sizing = _Sizing(work, memory, deadline_hours if work.hours is None else None, gpu.count if gpu else None)
    largest = _largest_shapes(pool)
    skipped: list[str] = []
    infeasible: list[Infeasible] = []
    estimates: list[Estimate] = []
    for o in pool:
        spec = gpus.lookup(o.accelerator)
        peak = spec.peak_tflops if spec else None
        if work.hours is None and not peak:
            skipped.append(
                f"{o.cloud} {o.instance_type}: no peak TFLOPS for {o.accelerator} in the GPU specs"
            )
            continue
        sized = _size(o, peak or 0.0, largest[(o.cloud, o.accelerator, o.region)], sizing)
        if isinstance(sized, Infeasible):
            if not (sizing.fixed_count is not None and sized.reason.startswith("not sold")):
                infeasible.append(sized)
            continue
        nodes, why = sized
        n_acc = o.accelerator_count * nodes
        if work.hours is not None:
            hours, eff = work.hours, 1.0
        else:
            hours, eff = _hours(work, n_acc, peak or 0.0)
        rate = storage.get(o.cloud)
        hosts = hosts_per_node(o) * nodes
        disk = disk_gb * rate.value * hours / HOURS_PER_MONTH * hosts if rate else 0.0
        if rate is None and disk_gb:
            skipped.append(f"{o.cloud}: no storage price in the catalog; storage not included")
        od = o.price_on_demand * nodes * hours + disk if o.price_on_demand else None
        sp = o.price_spot * nodes * hours + disk if o.price_spot else None
        estimates.append(
            Estimate(
                o,
                nodes,
                n_acc,
                hours,
                peak * n_acc if peak else None,
                od,
                sp,
                disk,
                efficiency=eff,
                within_deadline=sizing.deadline is None or hours <= sizing.deadline,
                memory_per_accelerator_gb=memory.per_accelerator_gb(n_acc) if memory else None,
                why_nodes=why,
            )
        )
    if not estimates:
        if infeasible:
            raise UsageError(
                f"no offering can run it: {infeasible[0].offering.accelerator} {infeasible[0].reason}",
                hint="pick larger accelerators or more of them",
            )
        if not skipped:
            counts = sorted({o.accelerator_count for o in pool})
            raise UsageError(
                f"no offering has {gpu.count if gpu else '?'} x {gpu.name if gpu else '?'}",
                hint=f"available counts: {', '.join(map(str, counts))} (or multiples of the largest)",
            )
        raise UsageError(
            f"cannot time this work: {skipped[0]}", hint="give --hours for that hardware, or pick another GPU"
        )
    estimates.sort(key=lambda e: (not e.within_deadline, e.sort_cost if e.within_deadline else e.hours))
    return CostReport(
        work,
        estimates,
        _assumptions(work, disk_gb, storage, sizing),
        sorted(set(skipped)),
        infeasible,
        sizing.deadline,
        calibration(work),
    )


#: published runs the time model is checked against (tests/pricing reproduce them)
REFERENCE_RUNS = (
    (
        "Llama 2 7B",
        6.74e9,
        2e12,
        "A100 80GB",
        184_320.0,
        "Touvron et al. 2023, arXiv 2307.09288, Table 2: 184,320 A100-80GB GPU-hours",
    ),
    (
        "MPT-7B",
        6.7e9,
        1e12,
        "A100",
        440 * 9.5 * 24,
        "MosaicML 2023-05-05: 440 A100-40GB for 9.5 days (~$200k at ~$2/GPU-h)",
    ),
)


def reference_gpu_hours(params: float, tokens: float, accelerator: str, mfu: float) -> float:
    """GPU-hours the time model gives for a run of ``params`` x ``tokens`` on ``accelerator``."""
    spec = gpus.lookup(accelerator)
    assert spec is not None and spec.peak_tflops
    return 6 * params * tokens / (spec.peak_tflops * 1e12 * mfu * 3600.0)


def calibration(work: Work) -> list[str]:
    """How far the time model at this MFU lands from published runs (shown with --params)."""
    if work.params is None or work.tokens is None:
        return []
    out = []
    for name, params, tokens, accel, published, source in REFERENCE_RUNS:
        ours = reference_gpu_hours(params, tokens, accel, work.mfu)
        implied = work.mfu * ours / published
        out.append(
            f"{name}: {ours:,.0f} {accel} GPU-h at MFU {work.mfu:g} vs {published:,.0f} published "
            f"({(ours / published - 1) * 100:+.0f}%; the run implies MFU {implied:.2f}; {source})"
        )
    return out


def _assumptions(work: Work, disk_gb: float, storage: dict[str, Rate], sizing: _Sizing) -> list[str]:
    out = [f"work: {work.basis}"]
    if work.flops is not None:
        out.append(
            "time = FLOP / (accelerators x dense BF16 peak x MFU x scaling); peaks from envcheck's GPU "
            f"specs; scaling linear to {SCALING_KNEE:,} accelerators, then x{SCALING_PER_DOUBLING:g} "
            f"per doubling ({SCALING_SOURCE})"
        )
    if sizing.memory is not None:
        out.append(sizing.memory.describe())
        out.append(
            f"several machines only for full {MULTI_NODE_MIN_ACCELERATORS}-GPU SXM/OAM machines "
            "(cluster fabric) and TPU slices (Multislice); PCIe cards and partial machines run on one "
            "machine; whether a cloud sells that many machines as one cluster (quota, cluster "
            "products) is not checked"
        )
    if sizing.deadline is not None:
        out.append(
            f"deadline {fmt_hours(sizing.deadline)} (--deadline): plans that meet it come first, "
            "cheapest on-demand first; nodes are added until they do"
        )
    if disk_gb:
        rates = ", ".join(f"{k} ${r.value:g}" for k, r in sorted(storage.items()))
        out.append(
            f"storage: {disk_gb:g} GB per host kept for the job, $/GB-month ({rates}), "
            f"{HOURS_PER_MONTH:g} h/month; multi-host TPU slices pay it per host"
        )
    out.append(
        "spot totals assume the job is never interrupted (checkpoint and restart time not included); "
        "on-demand is shown beside them"
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
    if not math.isfinite(hours):
        return "-"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    if hours < 24 * 365 * 2:
        return f"{hours / 24:.1f} d"
    return f"{hours / 24 / 365:.1f} y"


def group_plans(estimates: Sequence[Estimate]) -> list[tuple[Estimate, int]]:
    """Plans that differ only by region, shown once: (the first, i.e. best-sorted, plan; other regions)."""
    first: dict[tuple[str, str, int, bool], int] = {}
    out: list[tuple[Estimate, int]] = []
    for e in estimates:
        key = (e.offering.cloud, e.offering.instance_type, e.nodes, e.within_deadline)
        if key in first:
            i = first[key]
            out[i] = (out[i][0], out[i][1] + 1)
        else:
            first[key] = len(out)
            out.append((e, 0))
    return out
