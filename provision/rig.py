"""Plan a deep-learning workstation: platform, board, RAM, NVMe, PSU, cooling, cost, break-even.

Pure: reads the parts catalog and GPU specs, returns a ``RigPlan``. The rules (cost-anchors 4.1-4.8,
Tim Dettmers, "Which GPU(s) to Get for Deep Learning", 2023-01-30 edition, and Puget Systems):

- platform: the cheapest one whose lanes, slots and power fit; a desktop board at x8/x8 before any
  HEDT platform: x8 per card at PCIe 4.0+ costs little for <= 4 GPUs in data-parallel training
  (Puget Systems, Dettmers). HEDT (Threadripper, Xeon W) only when the cards need its lanes.
- slots: cards of width w fit in slots ``pitch`` apart when pitch >= w; open-air coolers also want
  one empty slot between cards, else they throttle 10-25 % (Dettmers). When no board takes the cards
  physically, the build moves to an open frame with riser cables.
- RAM >= 2 x total GPU memory, at least 32 GB. CPU: >= 4 threads per GPU (on-the-fly augmentation).
- PSU, power caps and circuit: ``provision.rig_power``. Break-even: ``provision.breakeven``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from envcheck.knowledge import gpus
from provision import breakeven, rig_power
from provision.catalog import Allowance, Board, Cpu, Drive, Offering, Parts, PowerLimits, Psu, RamKit
from provision.cost import GpuRequest, finite
from provision.errors import UsageError

MIN_RAM_GB = 32
THREADS_PER_GPU = 4
DEFAULT_STORAGE_TB = 2.0
HEDT_PLATFORMS = frozenset({"TRX50", "WRX80", "WRX90", "W790"})
WORKSTATION_SEGMENTS = frozenset({"consumer", "workstation"})
#: PCIe GB/s per lane per direction after encoding (Gen3 8 GT/s 128b/130b, doubling per generation)
PCIE_GB_PER_LANE = {3: 0.985, 4: 1.969, 5: 3.938}
#: Dettmers: custom water cooling costs about $100 per GPU plus ~$50 for the loop
WATER_PER_GPU_USD, WATER_BASE_USD = 100.0, 50.0


@dataclass(frozen=True)
class Line:
    """One bill-of-materials line; ``verified`` False prints a ``*``: no dated, retrieved source."""

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
    same_gpu: bool = True


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
    platform: str = ""
    pcie_gen: int = 4
    options: tuple[str, ...] = field(default=())
    kwh_source: str = ""

    @property
    def total_usd(self) -> float:
        """Sum of the bill of materials."""
        return sum(line.total_usd for line in self.lines)

    @property
    def peak_tflops_uncapped(self) -> float | None:
        """Dense BF16 peak of all cards together at full power."""
        peak = self.gpu.peak_tflops
        return peak * self.count if peak else None

    @property
    def peak_tflops(self) -> float | None:
        """Dense BF16 peak of all cards, reduced by the power cap when one is set."""
        peak = self.peak_tflops_uncapped
        return peak * self.power.performance_at_limit if peak else None

    @property
    def vram_gb(self) -> float:
        """GPU memory of all cards together."""
        return (self.gpu.memory_gb or 0) * self.count

    @property
    def pcie_gb_s(self) -> float:
        """PCIe bandwidth per card, one direction, GB/s."""
        return self.lanes_per_gpu * PCIE_GB_PER_LANE.get(self.pcie_gen, PCIE_GB_PER_LANE[4])


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


def _gpu_gen(spec: gpus.GpuSpec) -> int:
    return int(spec.pcie_gen) if spec.pcie_gen and spec.pcie_gen.isdigit() else 4


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
    other: tuple[tuple[Allowance, int], ...]
    lanes: int
    touching: bool
    risers: bool

    @property
    def hedt(self) -> bool:
        return self.board.platform in HEDT_PLATFORMS

    @property
    def cost(self) -> float:
        extra = sum(a.price_usd * n for a, n in self.other)
        return self.cpu.price_usd + self.board.price_usd + self.ram.price_usd + extra


def _allowance(parts: Parts, cls: str) -> Allowance:
    found = next((a for a in parts.other if a.platform_class == cls), None)
    if found is None:
        raise UsageError(f"the parts catalog has no {cls!r} allowance", hint="reinstall mlrig")
    return found


def _platforms(
    parts: Parts, count: int, width: int, open_air: bool, ram_gb: float, *, risers: bool
) -> tuple[list[_Platform], str]:
    """Feasible (CPU, board, RAM) combinations, and why the others were rejected.

    With ``risers`` the cards sit on an open frame, so slot spacing no longer limits them.
    """
    out: list[_Platform] = []
    why: list[str] = []
    for board in parts.boards:
        if risers:
            if board.gpu_slots < count:
                why.append(f"{board.name}: {board.gpu_slots} GPU slots")
                continue
            touching = False
        else:
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
        other: tuple[tuple[Allowance, int], ...]
        if risers:
            other = ((_allowance(parts, "open-frame"), 1), (_allowance(parts, "riser"), count))
        else:
            cls = "hedt" if board.platform in HEDT_PLATFORMS else "desktop"
            other = ((_allowance(parts, cls), 1),)
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
            out.append(_Platform(cpu, board, kits[0], other, lanes, touching, risers))
    return out, "; ".join(why)


def _distance(a: gpus.GpuSpec, b: gpus.GpuSpec) -> float:
    """How unlike two GPUs are: |log ratio| of memory bandwidth plus |log ratio| of dense peak."""
    out = 0.0
    for x, y in ((a.memory_bw_gbs, b.memory_bw_gbs), (a.peak_tflops, b.peak_tflops)):
        out += abs(math.log((x or 1.0) / (y or 1.0))) if x and y else 5.0
    return out


def comparable_cloud(spec: gpus.GpuSpec, count: int, offers: Iterable[Offering]) -> CloudMatch | None:
    """Cheapest on-demand rental of the same GPU; else of the GPU closest in bandwidth and TFLOPS."""
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
    rented = {o.accelerator for o in offers}
    candidates = [s for s in (gpus.lookup(n) for n in rented) if s is not None and not s.is_tpu]
    if not candidates:
        return None
    closest = min(candidates, key=lambda s: _distance(spec, s))
    pool = [o for o in offers if o.accelerator == closest.name]
    best = min(pool, key=lambda o: (o.price_on_demand or math.inf) / o.accelerator_count)
    per_gpu = (best.price_on_demand or 0.0) / best.accelerator_count
    return CloudMatch(
        best,
        per_gpu * count,
        f"no {spec.name} for rent in the catalog; closest in memory bandwidth and TFLOPS: {closest.name} "
        f"({closest.memory_bw_gbs or 0:,.0f} vs {spec.memory_bw_gbs or 0:,.0f} GB/s, "
        f"{closest.peak_tflops or 0:,.0f} vs {spec.peak_tflops or 0:,.0f} TFLOPS)",
        same_gpu=False,
    )


def plan(
    gpu: GpuRequest,
    parts: Parts,
    offers: Sequence[Offering],
    *,
    kwh_price: float,
    utilization: float,
    storage_tb: float = DEFAULT_STORAGE_TB,
    limits: dict[str, PowerLimits] | None = None,
    kwh_source: str = "--kwh-price",
) -> RigPlan:
    """Plan the cheapest sound build for ``gpu`` (NAME:COUNT); raises UsageError when impossible."""
    utilization = finite("--utilization", utilization, high=1.0)
    kwh_price = finite("--kwh-price", kwh_price, high=100.0, low_ok=True)
    storage_tb = finite("--storage-tb", storage_tb, high=1000.0, low_ok=True)
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
    options, why = _platforms(parts, count, width, open_air, ram_gb, risers=False)
    if not options:
        options, why_risers = _platforms(parts, count, width, open_air, ram_gb, risers=True)
        if not options:
            raise UsageError(f"no platform in the catalog takes {count} x {spec.name}: {why}; {why_risers}")
    tdp = spec.tdp_w or 0.0
    driver_min = (limits or {}).get(spec.name)

    powers: dict[int, rig_power.PowerBudget] = {}
    refusal: UsageError | None = None
    for i, p in enumerate(options):
        try:
            powers[i] = rig_power.budget(
                tdp, count, p.cpu.power_w, parts.psus, min_limit_w=driver_min.min_w if driver_min else None
            )
        except UsageError as exc:
            refusal = exc
    if not powers:
        assert refusal is not None
        raise refusal

    def rank(i: int) -> tuple[bool, bool, bool, float]:
        p = options[i]
        return (powers[i].power_limit_w is not None, p.hedt, p.touching, p.cost)

    chosen = min(powers, key=rank)
    best = options[chosen]
    drives = sorted((d for d in parts.drives if d.capacity_tb >= storage_tb), key=lambda d: d.price_usd)
    if not drives:
        raise UsageError(f"no NVMe drive in the catalog holds {storage_tb:g} TB")
    drive = drives[0]
    power = powers[chosen]
    assert power.psu is not None
    lines = (
        _gpu_line(spec, count),
        _line("CPU", best.cpu),
        _line("Motherboard", best.board),
        _line("RAM", best.ram),
        _line("NVMe", drive),
        _line("PSU", power.psu, power.psu_count),
        *(_line("Frame/risers" if best.risers else "Case/cooling", a, n) for a, n in best.other),
    )
    kwh_year, usd_year = breakeven.yearly_energy(power.wall_w / 1000.0, kwh_price, utilization)
    capex = sum(line.total_usd for line in lines)
    cloud = comparable_cloud(spec, count, offers)
    be = (
        breakeven.break_even(capex, cloud.per_hour, power.wall_w / 1000.0, kwh_price, utilization)
        if cloud
        else None
    )
    gen = min(best.board.pcie_gen, best.cpu.pcie_gen, _gpu_gen(spec))
    notes = _notes(spec, count, best, width=width, width_note=width_note, open_air=open_air, gen=gen)
    platform = ("HEDT " if best.hedt else "desktop ") + best.board.platform
    if best.risers:
        platform += ", cards on an open frame with risers"
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
        platform,
        gen,
        tuple(_options(spec, count, best, power, open_air)),
        kwh_source,
    )


def _line(item: str, part: Cpu | Board | RamKit | Drive | Allowance | Psu, quantity: int = 1) -> Line:
    return Line(item, part.name, quantity, part.price_usd, part.source, part.price_date, part.verified)


def _gpu_line(spec: gpus.GpuSpec, count: int) -> Line:
    """The GPU line: a dated street price is sourced; a launch MSRP alone gets the ``*``."""
    prices = spec.prices
    if prices.street_usd is not None and prices.street_date:
        return Line(
            "GPU",
            spec.name,
            count,
            prices.street_usd,
            f"street price {prices.street_date}; {spec.source}",
            prices.street_date,
            True,
        )
    return Line(
        "GPU",
        spec.name,
        count,
        prices.best_usd or 0.0,
        f"launch MSRP ({spec.release_year}), no dated street price; {spec.source}",
        str(spec.release_year or "?"),
        False,
    )


def _notes(
    spec: gpus.GpuSpec,
    count: int,
    best: _Platform,
    *,
    width: int,
    width_note: str | None,
    open_air: bool,
    gen: int,
) -> list[str]:
    notes: list[str] = []
    if width_note:
        notes.append(width_note)
    if count == 1:
        notes.append(f"PCIe: one card at x{best.lanes} Gen{gen}")
    elif best.lanes >= 16:
        notes.append(f"PCIe: x16 Gen{gen} per card from {best.cpu.gpu_lanes} CPU lanes")
    else:
        notes.append(
            f"PCIe: x{best.lanes} Gen{gen} per card is fine: for <= 4 GPUs in data-parallel training x8 at "
            "Gen4+ costs little (Puget Systems, Dettmers); tensor/model-parallel jobs over PCIe would feel it"
        )
    if _gpu_gen(spec) > gen:
        notes.append(f"{spec.name} is a PCIe Gen{spec.pcie_gen} card; this platform runs it at Gen{gen}")
    if count > 4:
        notes.append(
            "more than 4 GPUs: PCIe traffic grows with every card; prefer NVLink-capable or server parts"
        )
    if best.hedt and not best.risers:
        notes.append(f"{best.board.platform}: chosen for its {best.cpu.gpu_lanes} CPU lanes / slot count")
    if count > 1 and not best.risers:
        notes.append(
            f"{best.board.name}: a GPU slot every {best.board.slot_pitch} slot"
            f"{'s' if best.board.slot_pitch != 1 else ''}, cards {width} slots wide"
        )
    if spec.cooler == "passive":
        notes.append(f"{spec.name} is passively cooled: it needs server-chassis airflow, not a desktop case")
    elif best.risers:
        notes.append(
            f"cooling: {count} x {width}-slot open-air cards do not fit side by side on any board: they sit "
            "on an open frame on riser cables, each with free air (Dettmers: stacked open-air cards "
            "throttle 10-25 %)"
        )
    elif open_air and count > 2:
        notes.append(
            f"cooling: {count} open-air cards heat each other (10-25 % throttling, Dettmers): prefer "
            "blower/workstation cards, risers on an open frame, or water cooling"
        )
    elif open_air and best.touching:
        notes.append(
            "cooling: the two cards sit back to back with no free slot: give the case strong front intake "
            "and a top exhaust, or move one card to a vertical riser mount; expect some throttling of the "
            "upper card under sustained load (Dettmers)"
        )
    elif open_air and count == 2:
        notes.append(
            "cooling: two open-air cards with a free slot between them are fine in a ventilated case"
        )
    elif spec.cooler == "blower":
        notes.append("cooling: blower cards exhaust out of the case and can sit side by side")
    return notes


def _options(
    spec: gpus.GpuSpec, count: int, best: _Platform, power: rig_power.PowerBudget, open_air: bool
) -> list[str]:
    """Concrete alternatives for big consumer builds (3+ open-air cards or over one circuit)."""
    if not (open_air and count > 2) and not power.needs_230v:
        return []
    out: list[str] = []
    if open_air and count > 2:
        blowers = sorted(
            (
                s
                for s in buyable_gpus()
                if s.cooler == "blower" and (s.memory_gb or 0) >= (spec.memory_gb or 0)
            ),
            key=lambda s: s.prices.best_usd or math.inf,
        )
        if blowers:
            b = blowers[0]
            out.append(
                f"blower cards: {count} x {b.name} ({b.memory_gb:g} GB, ~${b.prices.best_usd:,.0f} each) sit "
                "side by side in a tower and exhaust out the back"
            )
        riser = "chosen here" if best.risers else "no slot spacing limits"
        out.append(
            f"risers on an open frame ({riser}): Gen4-rated riser cables <= 30 cm, a steel frame, "
            "fans blowing across the cards"
        )
        water = WATER_PER_GPU_USD * count + WATER_BASE_USD
        out.append(
            f"water cooling: single-slot blocks let {count} cards sit in adjacent slots; ~${water:,.0f} "
            f"(Dettmers: ~${WATER_PER_GPU_USD:.0f} per GPU + ${WATER_BASE_USD:.0f})"
        )
    if power.psu_count > 1:
        cap = (
            f"with each card capped to {power.power_limit_w:.0f} W"
            if power.power_limit_w
            else "instead of a power cap"
        )
        out.append(f"two PSUs ({power.psu.name if power.psu else '?'} x 2, chosen here) {cap}")
    elif power.power_limit_w is None and power.required_psu_w > 1600:
        out.append("two PSUs: split the cards across two supplies joined by an add2psu relay board")
    if power.needs_230v:
        out.append(
            f"a 230 V circuit: ~{power.wall_w:,.0f} W at the wall is over a US 15 A / 120 V circuit "
            f"({rig_power.CIRCUIT_LIMIT_W:,.0f} W continuous); 230 V / 16 A carries "
            f"{rig_power.CIRCUIT_230V_W:,.0f} W"
        )
    return out


def plan_for_budget(
    budget: float,
    optimize: str,
    parts: Parts,
    offers: Sequence[Offering],
    *,
    kwh_price: float,
    utilization: float,
    storage_tb: float = DEFAULT_STORAGE_TB,
    limits: dict[str, PowerLimits] | None = None,
    kwh_source: str = "--kwh-price",
) -> RigPlan:
    """The build within ``budget`` with the most dense TFLOPS (after any power cap) or GPU memory."""
    if optimize not in {"tflops", "memory"}:
        raise UsageError(f"--optimize {optimize!r}: expected tflops or memory")
    budget = finite("--budget", budget, high=1e9)
    most = max(b.gpu_slots for b in parts.boards)
    plans: list[RigPlan] = []

    def build(spec: gpus.GpuSpec, count: int) -> RigPlan:
        return plan(
            GpuRequest(spec.name, count),
            parts,
            offers,
            kwh_price=kwh_price,
            utilization=utilization,
            storage_tb=storage_tb,
            limits=limits,
            kwh_source=kwh_source,
        )

    def cheapest_of(spec: gpus.GpuSpec) -> list[RigPlan]:
        try:
            return [build(spec, 1)]
        except UsageError:
            return []

    for spec in buyable_gpus():
        if optimize == "tflops" and spec.bf16_tflops_dense is None:
            continue
        for count in range(1, most + 1):
            try:
                p = build(spec, count)
            except UsageError:
                break
            if p.total_usd > budget:
                break
            plans.append(p)
    if not plans:
        cheapest = min(
            (p for s in buyable_gpus() for p in cheapest_of(s)),
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
