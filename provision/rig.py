"""Plan a deep-learning workstation: platform, board, RAM, NVMe, PSU, cooling, cost, break-even.

Pure: reads the parts catalog and GPU specs, returns a ``RigPlan``. The rules (cost-anchors 4.1-4.8):

- lanes: x8 per card is fine for <= 4 GPUs at PCIe 4.0+ in data-parallel training (Puget Systems,
  Dettmers); x4 or chipset links, or model-parallel jobs over PCIe only, feel it.
- slots: cards of width w fit in slots ``pitch`` apart when pitch >= w; open-air coolers also want
  one empty slot between cards (pitch >= w + 1), else they throttle 10-25 % (Dettmers).
- RAM >= 2 x total GPU memory, at least 32 GB. CPU: >= 4 threads per GPU (on-the-fly augmentation).
- PSU and circuit: see ``provision.rig_power``. Break-even: see ``provision.breakeven``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from envcheck.knowledge import gpus
from provision import breakeven, rig_power
from provision.catalog import Allowance, Board, Cpu, Drive, Offering, Parts, Psu, RamKit
from provision.cost import GpuRequest
from provision.errors import UsageError

MIN_RAM_GB = 32
THREADS_PER_GPU = 4
DEFAULT_STORAGE_TB = 2.0
HEDT_PLATFORMS = frozenset({"TRX50", "WRX80", "WRX90", "W790"})
WORKSTATION_SEGMENTS = frozenset({"consumer", "workstation"})


@dataclass(frozen=True)
class Line:
    """One bill-of-materials line."""

    item: str
    name: str
    quantity: int
    unit_usd: float
    source: str
    price_date: str
    verified: bool

    @property
    def total_usd(self) -> float:
        """quantity x unit price."""
        return self.quantity * self.unit_usd


@dataclass(frozen=True)
class CloudMatch:
    """The cheapest cloud offering comparable to the rig, and how it was matched."""

    offering: Offering
    per_hour: float
    how: str


@dataclass(frozen=True)
class RigPlan:
    """A workstation build with its reasoning."""

    gpu: gpus.GpuSpec
    count: int
    cpu: Cpu
    board: Board
    ram: RamKit
    drive: Drive
    lines: tuple[Line, ...]
    power: rig_power.PowerBudget
    lanes_per_gpu: int
    slot_width: int
    kwh_price: float
    utilization: float
    energy_kwh_year: float
    energy_usd_year: float
    cloud: CloudMatch | None
    break_even: breakeven.BreakEven | None
    notes: tuple[str, ...] = field(default=())

    @property
    def total_usd(self) -> float:
        """Sum of the bill of materials."""
        return sum(line.total_usd for line in self.lines)

    @property
    def peak_tflops(self) -> float | None:
        """Dense BF16 peak of all cards together."""
        peak = self.gpu.peak_tflops
        return peak * self.count if peak else None

    @property
    def vram_gb(self) -> float:
        """GPU memory of all cards together."""
        return (self.gpu.memory_gb or 0) * self.count


def rig_gpu(name: str) -> gpus.GpuSpec:
    """Resolve a GPU the planner can buy: known, a PCIe card, with a price and a TDP."""
    spec = gpus.lookup(name)
    if spec is None:
        raise UsageError(f"unknown GPU {name!r}", hint="e.g. 'RTX 4090', 'RTX 3090', 'RTX 6000 Ada'")
    problems = []
    if spec.prices.best_usd is None:
        problems.append("no purchase price in the GPU specs")
    if spec.tdp_w is None:
        problems.append("no board power in the GPU specs")
    if spec.pcie_lanes is None or spec.is_tpu:
        problems.append("not a PCIe card")
    elif spec.segment not in WORKSTATION_SEGMENTS:
        problems.append("a passively cooled data-centre card (needs a server chassis)")
    if problems:
        buyable = ", ".join(s.name for s in buyable_gpus())
        raise UsageError(
            f"cannot plan a rig with {spec.name}: {'; '.join(problems)}", hint=f"plannable: {buyable}"
        )
    return spec


def buyable_gpus() -> list[gpus.GpuSpec]:
    """PCIe cards with a price and a board power (what ``--budget`` chooses from)."""
    return [
        s
        for s in gpus.all_specs()
        if s.prices.best_usd is not None
        and s.tdp_w is not None
        and s.pcie_lanes is not None
        and s.segment in WORKSTATION_SEGMENTS
    ]


def _slot_width(spec: gpus.GpuSpec) -> tuple[int, str | None]:
    if spec.slot_width:
        return spec.slot_width, None
    width = 3 if spec.segment == "consumer" else 2
    return width, f"{spec.name} slot width not in the specs: assumed {width} slots"


def cards_that_fit(board: Board, width: int, gap: bool) -> int:
    """How many cards of ``width`` slots the board's GPU slots take (one free slot between if ``gap``)."""
    if board.gpu_slots <= 1:
        return board.gpu_slots
    need = width + (1 if gap else 0)
    step = max(1, math.ceil(need / board.slot_pitch))
    return (board.gpu_slots - 1) // step + 1


@dataclass(frozen=True)
class _Platform:
    cpu: Cpu
    board: Board
    ram: RamKit
    other: Allowance
    lanes: int
    touching: bool

    @property
    def cost(self) -> float:
        return self.cpu.price_usd + self.board.price_usd + self.ram.price_usd + self.other.price_usd


def _platforms(
    parts: Parts, count: int, width: int, open_air: bool, ram_gb: float
) -> tuple[list[_Platform], str]:
    """Feasible (CPU, board, RAM) combinations, and why the best-looking ones were rejected."""
    out: list[_Platform] = []
    why: list[str] = []
    for board in parts.boards:
        fit_gap = cards_that_fit(board, width, gap=open_air)
        fit_tight = cards_that_fit(board, width, gap=False)
        if fit_tight < count:
            why.append(f"{board.name}: takes {fit_tight} x {width}-slot cards")
            continue
        touching = open_air and count > 1 and fit_gap < count
        kits = sorted(
            (
                k
                for k in parts.ram
                if k.kind == board.memory_kind
                and k.modules <= board.memory_slots
                and ram_gb <= k.total_gb <= board.max_memory_gb
            ),
            key=lambda k: k.price_usd,
        )
        if not kits:
            why.append(f"{board.name}: no RAM kit >= {ram_gb:.0f} GB")
            continue
        other_class = "hedt" if board.platform in HEDT_PLATFORMS else "desktop"
        other = next(a for a in parts.other if a.platform_class == other_class)
        for cpu in parts.cpus:
            if cpu.platform != board.platform:
                continue
            lanes = min(board.lanes_per_gpu if count > 1 else 16, cpu.gpu_lanes // count)
            if lanes < 8:
                why.append(f"{cpu.name}: {cpu.gpu_lanes} GPU lanes give x{lanes} per card")
                continue
            if cpu.threads < THREADS_PER_GPU * count:
                why.append(f"{cpu.name}: {cpu.threads} threads < {THREADS_PER_GPU} per GPU")
                continue
            out.append(_Platform(cpu, board, kits[0], other, lanes, touching))
    return out, "; ".join(why)


def comparable_cloud(spec: gpus.GpuSpec, count: int, offers: Iterable[Offering]) -> CloudMatch | None:
    """Cheapest on-demand way to rent the same compute: same card, else cards at least as fast and large."""
    offers = [o for o in offers if o.price_on_demand]
    same = [o for o in offers if o.accelerator == spec.name]
    if same:
        exact = [o for o in same if o.accelerator_count == count]
        if exact:
            best = min(exact, key=lambda o: o.price_on_demand or math.inf)
            return CloudMatch(best, best.price_on_demand or 0.0, f"same GPU, {count} per instance")
        best = min(same, key=lambda o: (o.price_on_demand or math.inf) / o.accelerator_count)
        per_gpu = (best.price_on_demand or 0.0) / best.accelerator_count
        return CloudMatch(best, per_gpu * count, f"same GPU, per-GPU price of {best.instance_type} x {count}")
    peak, mem = spec.peak_tflops or 0.0, spec.memory_gb or 0.0
    alike = []
    for o in offers:
        other = gpus.lookup(o.accelerator)
        if (
            other
            and not other.is_tpu
            and (other.peak_tflops or 0) >= peak
            and (o.accelerator_memory_gb or 0) >= mem
        ):
            alike.append(o)
    if not alike:
        return None
    best = min(alike, key=lambda o: (o.price_on_demand or math.inf) / o.accelerator_count)
    per_gpu = (best.price_on_demand or 0.0) / best.accelerator_count
    return CloudMatch(
        best,
        per_gpu * count,
        f"{spec.name} not rented in the catalog: cheapest GPU at least as fast and as large",
    )


def plan(
    gpu: GpuRequest,
    parts: Parts,
    offers: Sequence[Offering],
    *,
    kwh_price: float,
    utilization: float,
    storage_tb: float = DEFAULT_STORAGE_TB,
) -> RigPlan:
    """Plan the cheapest sound build for ``gpu`` (NAME:COUNT); raises UsageError when impossible."""
    if not 0 < utilization <= 1:
        raise UsageError(f"--utilization {utilization} must be in (0, 1]")
    if kwh_price < 0:
        raise UsageError(f"--kwh-price {kwh_price} must be >= 0")
    spec = rig_gpu(gpu.name)
    count = gpu.count or 1
    most = max(b.gpu_slots for b in parts.boards)
    if count > most:
        raise UsageError(
            f"{count} GPUs: no board in the catalog takes more than {most}", hint="use several machines"
        )
    width, width_note = _slot_width(spec)
    open_air = spec.cooler == "open-air"
    vram = (spec.memory_gb or 0) * count
    ram_gb = max(MIN_RAM_GB, 2 * vram)
    options, why = _platforms(parts, count, width, open_air, ram_gb)
    if not options:
        raise UsageError(f"no platform in the catalog takes {count} x {spec.name}: {why}")
    tdp = spec.tdp_w or 0.0

    def rank(p: _Platform) -> tuple[bool, bool, float]:
        limited = rig_power.budget(tdp, count, p.cpu.power_w, parts.psus).power_limit_w is not None
        return (p.touching, limited, p.cost)

    best = min(options, key=rank)
    drives = sorted((d for d in parts.drives if d.capacity_tb >= storage_tb), key=lambda d: d.price_usd)
    if not drives:
        raise UsageError(f"no NVMe drive in the catalog holds {storage_tb:g} TB")
    drive = drives[0]
    power = rig_power.budget(tdp, count, best.cpu.power_w, parts.psus)
    assert power.psu is not None
    gpu_price = spec.prices.best_usd or 0.0
    gpu_src = (
        f"street price {spec.prices.street_date}" if spec.prices.street_usd is not None else "launch MSRP"
    ) + f"; {spec.source}"
    lines = (
        Line(
            "GPU",
            spec.name,
            count,
            gpu_price,
            gpu_src,
            spec.prices.street_date or str(spec.release_year),
            True,
        ),
        _line("CPU", best.cpu),
        _line("Motherboard", best.board),
        _line("RAM", best.ram),
        _line("NVMe", drive),
        _line("PSU", power.psu),
        _line("Case/cooling", best.other),
    )
    kwh_year, usd_year = breakeven.yearly_energy(power.sustained_w / 1000.0, kwh_price, utilization)
    capex = sum(line.total_usd for line in lines)
    cloud = comparable_cloud(spec, count, offers)
    be = (
        breakeven.break_even(capex, cloud.per_hour, power.sustained_w / 1000.0, kwh_price, utilization)
        if cloud
        else None
    )
    notes = _notes(spec, count, best, width=width, width_note=width_note, open_air=open_air)
    return RigPlan(
        spec,
        count,
        best.cpu,
        best.board,
        best.ram,
        drive,
        lines,
        power,
        best.lanes,
        width,
        kwh_price,
        utilization,
        kwh_year,
        usd_year,
        cloud,
        be,
        tuple(notes),
    )


def _line(item: str, part: Cpu | Board | RamKit | Drive | Allowance | Psu) -> Line:
    return Line(item, part.name, 1, part.price_usd, part.source, part.price_date, part.verified)


def _notes(
    spec: gpus.GpuSpec, count: int, best: _Platform, *, width: int, width_note: str | None, open_air: bool
) -> list[str]:
    notes: list[str] = []
    if width_note:
        notes.append(width_note)
    gen = min(best.board.pcie_gen, best.cpu.pcie_gen)
    if count == 1:
        notes.append(f"PCIe: one card at x{best.lanes} Gen{gen}")
    elif best.lanes >= 16:
        notes.append(f"PCIe: x16 Gen{gen} per card from {best.cpu.gpu_lanes} CPU lanes")
    else:
        notes.append(
            f"PCIe: x{best.lanes} Gen{gen} per card is fine: for <= 4 GPUs in data-parallel training "
            "x8 at Gen4+ "
            "costs little (Puget Systems, Dettmers); tensor/model-parallel jobs over PCIe would feel it"
        )
    if count > 4:
        notes.append(
            "more than 4 GPUs: PCIe traffic grows with every card; prefer NVLink-capable or server parts"
        )
    slots = f"{best.board.name}: GPU slots {best.board.slot_pitch} positions apart, cards {width} slots wide"
    if count > 1:
        notes.append(slots)
    if spec.cooler == "passive":
        notes.append(f"{spec.name} is passively cooled: it needs server-chassis airflow, not a desktop case")
    elif open_air and count > 2:
        notes.append(
            f"cooling: {count} open-air cards heat each other (10-25 % throttling): "
            "prefer blower/workstation cards, "
            "risers on an open frame, or water cooling (~$100 per GPU + $50, Dettmers)"
        )
    elif open_air and best.touching:
        notes.append(
            "cooling: the cards sit with no free slot between them: expect throttling; use a riser or blowers"
        )
    elif open_air and count == 2:
        notes.append(
            "cooling: two open-air cards with a free slot between them are fine in a well-ventilated case"
        )
    elif spec.cooler == "blower":
        notes.append("cooling: blower cards exhaust out of the case and can sit side by side")
    if (
        best.cpu.pcie_gen
        and spec.pcie_gen
        and spec.pcie_gen.isdigit()
        and int(spec.pcie_gen) > best.cpu.pcie_gen
    ):
        notes.append(f"{spec.name} is PCIe {spec.pcie_gen}.0; the platform runs it at Gen{best.cpu.pcie_gen}")
    return notes


def plan_for_budget(
    budget: float,
    optimize: str,
    parts: Parts,
    offers: Sequence[Offering],
    *,
    kwh_price: float,
    utilization: float,
    storage_tb: float = DEFAULT_STORAGE_TB,
) -> RigPlan:
    """The build within ``budget`` with the most dense TFLOPS (or GPU memory); ties go to the cheaper."""
    if optimize not in {"tflops", "memory"}:
        raise UsageError(f"--optimize {optimize!r}: expected tflops or memory")
    if budget <= 0:
        raise UsageError(f"--budget {budget:g} must be > 0")
    most = max(b.gpu_slots for b in parts.boards)
    plans: list[RigPlan] = []
    for spec in buyable_gpus():
        if optimize == "tflops" and spec.bf16_tflops_dense is None:
            continue
        for count in range(1, most + 1):
            try:
                p = plan(
                    GpuRequest(spec.name, count),
                    parts,
                    offers,
                    kwh_price=kwh_price,
                    utilization=utilization,
                    storage_tb=storage_tb,
                )
            except UsageError:
                break
            if p.total_usd > budget:
                break
            plans.append(p)
    if not plans:
        cheapest = min(
            (
                p
                for s in buyable_gpus()
                for p in _try_plan(s, parts, offers, kwh=kwh_price, util=utilization, tb=storage_tb)
            ),
            key=lambda p: p.total_usd,
            default=None,
        )
        hint = (
            f"the cheapest build ({cheapest.gpu.name}) costs ${cheapest.total_usd:,.0f}" if cheapest else None
        )
        raise UsageError(f"budget ${budget:,.0f} is too small for any build in the catalog", hint=hint)

    def score(p: RigPlan) -> tuple[float, float]:
        value = (p.peak_tflops or 0.0) if optimize == "tflops" else p.vram_gb
        return (value, -p.total_usd)

    return max(plans, key=score)


def _try_plan(
    spec: gpus.GpuSpec, parts: Parts, offers: Sequence[Offering], *, kwh: float, util: float, tb: float
) -> list[RigPlan]:
    try:
        return [plan(GpuRequest(spec.name, 1), parts, offers, kwh_price=kwh, utilization=util, storage_tb=tb)]
    except UsageError:
        return []
