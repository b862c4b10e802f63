"""Power for a workstation: PSU size with transient headroom, power caps, wall draw, the circuit.

The formula (cost-anchors 4.1, stated so users can check it):

    load_w      = sum(GPU board power) + CPU package power + 150 W (board, RAM, drives, fans)
    psu_w       >= 1.25 x load_w           (PSU at <= 80 % of its rating under load)
    transient_w = 2 x sum(GPU board power) + CPU + 150 W
    wall_w      = load_w / PSU efficiency (80 PLUS at ~50 % load: Gold 90 %, Platinum 92 %, Titanium 94 %)

GPUs draw 2x (ATX 3.0 excursion spec: 200 % for 100 us) in short spikes. An ATX 3.0 unit rides
them; an ATX 2.x unit must carry ``transient_w`` as continuous capacity.

When no single PSU carries the build, the choice is: a power cap, never below the driver's minimum
nor ``CAP_FLOOR`` of board power, if it keeps >= ``CAP_KEEPS`` of the throughput; else two PSUs at
full power; else two PSUs with a cap (never below the floor); else the build is refused.
Throughput at a cap follows ``CAP_CURVE``: Puget Systems (Kinghorn, 2020-11-13) kept over 95 % of
TensorFlow throughput with 4 x RTX 3090 capped from 350 W to 280 W (80 %); a sustained gpu-burn run
lost ~27 % going from 300 W to 250 W (86 % -> 71 %; nodehome.ai "Power caps on three RTX 3090s").
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from provision.catalog import Psu
from provision.errors import UsageError

BASE_W = 150.0
LOAD_FACTOR = 1.25
TRANSIENT_FACTOR = 2.0
#: Lambda: keep a workstation at <= 1,440 W on a US 15 A / 120 V circuit (80 % continuous)
CIRCUIT_LIMIT_W = 1440.0
#: a dedicated US 20 A / 120 V circuit at 80 % continuous
CIRCUIT_20A_W = 20 * 120 * 0.8
#: a 230 V / 16 A circuit at 80 % continuous
CIRCUIT_230V_W = 230 * 16 * 0.8
#: 80 PLUS efficiency at ~50 % load (115 V internal); unknown ratings get the Gold figure minus 2 points
EFFICIENCY = {"80 PLUS Titanium": 0.94, "80 PLUS Platinum": 0.92, "80 PLUS Gold": 0.90}
DEFAULT_EFFICIENCY = 0.88
#: never cap a card below this fraction of its board power
CAP_FLOOR = 0.70
#: a cap is chosen over a second PSU only when it keeps at least this much throughput
CAP_KEEPS = 0.95
#: (fraction of board power, fraction of throughput kept); linear in between (see the docstring)
CAP_CURVE: tuple[tuple[float, float], ...] = ((0.70, 0.70), (0.80, 0.95), (1.0, 1.0))


def performance_at(fraction: float) -> float:
    """Throughput kept at a power cap of ``fraction`` x board power (CAP_CURVE, clamped)."""
    xs = [x for x, _ in CAP_CURVE]
    if fraction >= xs[-1]:
        return 1.0
    if fraction <= xs[0]:
        return CAP_CURVE[0][1]
    i = bisect.bisect_right(xs, fraction)
    (x0, y0), (x1, y1) = CAP_CURVE[i - 1], CAP_CURVE[i]
    return y0 + (y1 - y0) * (fraction - x0) / (x1 - x0)


def efficiency(psu: Psu | None) -> float:
    """Wall-to-DC efficiency of ``psu`` at typical load."""
    return EFFICIENCY.get(psu.efficiency, DEFAULT_EFFICIENCY) if psu else DEFAULT_EFFICIENCY


@dataclass(frozen=True)
class PowerBudget:
    """Power numbers for one build and the verdicts drawn from them."""

    gpu_w: float
    cpu_w: float
    sustained_w: float
    required_psu_w: float
    transient_w: float
    rule_of_thumb_w: float
    wall_w: float
    psu: Psu | None
    #: per-card power limit (W) chosen to fit one PSU, None when the cards run at full power
    power_limit_w: float | None
    notes: tuple[str, ...]
    psu_count: int = 1
    efficiency: float = DEFAULT_EFFICIENCY
    #: fraction of full throughput at the power limit (1.0 without one)
    performance_at_limit: float = 1.0

    @property
    def needs_230v(self) -> bool:
        """True when the wall draw exceeds a US 15 A / 120 V household circuit."""
        return self.wall_w > CIRCUIT_LIMIT_W


def rule_of_thumb(n_gpus: int) -> float:
    """The old "500 W + 150 W per GPU" sizing rule."""
    return 500.0 + 150.0 * n_gpus


def _fits(psu: Psu, required: float, transient: float) -> bool:
    if psu.watts < required:
        return False
    # ATX 3.0-compliant at this load: rides 200 % excursions; otherwise it must carry the spike
    return psu.atx3_w >= required or psu.watts >= transient


def _cheapest(psus: Sequence[Psu], required: float, transient: float) -> Psu | None:
    ok = sorted((p for p in psus if _fits(p, required, transient)), key=lambda p: (p.price_usd, p.watts))
    return ok[0] if ok else None


def budget(
    gpu_tdp_w: float, n_gpus: int, cpu_w: float, psus: Sequence[Psu], *, min_limit_w: float | None = None
) -> PowerBudget:
    """Size the power supply for ``n_gpus`` cards of ``gpu_tdp_w`` and say what the limits imply.

    ``min_limit_w`` is the driver's minimum power limit for the card, when known.
    """
    gpu_w = gpu_tdp_w * n_gpus
    sustained = gpu_w + cpu_w + BASE_W
    required = math.ceil(LOAD_FACTOR * sustained)
    transient = TRANSIENT_FACTOR * gpu_w + cpu_w + BASE_W
    rule = rule_of_thumb(n_gpus)
    notes: list[str] = [
        f"PSU >= 1.25 x ({n_gpus} x {gpu_tdp_w:g} W GPU + {cpu_w:g} W CPU + {BASE_W:g} W rest) "
        f"= {required:.0f} W; GPU spikes reach ~{transient:.0f} W for ~100 us (2x GPU power): an "
        f"ATX 3.0 unit rides them, an ATX 2.x unit would need >= {transient:.0f} W"
    ]
    if rule < required:
        notes.append(
            f"the old 500 W + 150 W/GPU rule says {rule:.0f} W, {required - rule:.0f} W short: it assumed "
            f"~150-250 W cards; these draw {gpu_tdp_w:g} W each"
        )
    else:
        notes.append(f"the old 500 W + 150 W/GPU rule ({rule:.0f} W) still covers this build")
    psu = _cheapest(psus, required, transient)
    limit: float | None = None
    perf = 1.0
    count = 1
    if psu is None and psus:
        floor = max(CAP_FLOOR * gpu_tdp_w, min_limit_w or 0.0)
        biggest = max(psus, key=lambda p: (min(p.watts, p.atx3_w or p.watts), p.watts))
        usable = min(biggest.watts, biggest.atx3_w or biggest.watts) / LOAD_FACTOR
        cap = math.floor((usable - cpu_w - BASE_W) / n_gpus / 10) * 10
        cap_perf = performance_at(cap / gpu_tdp_w) if cap > 0 else 0.0
        # two PSUs: one carries the CPU, the rest and half the cards; the other the remaining cards
        half = math.ceil(n_gpus / 2)
        per_unit_load = half * gpu_tdp_w + cpu_w + BASE_W
        twin = _cheapest(
            psus, math.ceil(LOAD_FACTOR * per_unit_load), TRANSIENT_FACTOR * half * gpu_tdp_w + cpu_w + BASE_W
        )
        # two of the biggest units with the cards capped: the unit with the CPU sets the cap
        cap2 = math.floor((usable - cpu_w - BASE_W) / half / 10) * 10
        if cap >= floor and cap_perf >= CAP_KEEPS:
            psu, limit, perf = biggest, float(cap), cap_perf
            notes.append(
                f"no single PSU in the catalog carries {required:.0f} W: cap each card at {cap} W "
                f"({cap / gpu_tdp_w:.0%} of {gpu_tdp_w:g} W; `sudo nvidia-smi -pl {cap}`) on the "
                f"{biggest.name}, keeping ~{cap_perf:.0%} of the throughput (Puget: 80 % power kept "
                ">95 % on RTX 3090s)" + (f"; or two {twin.name} units at full power" if twin else "")
            )
        elif twin is None and cap2 >= floor:
            psu, count, limit, perf = biggest, 2, float(cap2), performance_at(cap2 / gpu_tdp_w)
            notes.append(
                f"no single PSU in the catalog carries {required:.0f} W: use two {biggest.name} units (one "
                f"for the CPU, board and {half} cards, one for the other {n_gpus - half}) and cap each card "
                f"at {cap2} W ({cap2 / gpu_tdp_w:.0%} of {gpu_tdp_w:g} W; `sudo nvidia-smi -pl {cap2}`), "
                f"keeping ~{perf:.0%} of the throughput"
            )
        elif twin is not None:
            psu, count = twin, 2
            why = (
                f"a cap to {cap} W would go below the floor of {floor:.0f} W (max of the driver minimum "
                f"and {CAP_FLOOR:.0%} of board power)"
                if cap < floor
                else f"a cap to {cap} W would keep only ~{cap_perf:.0%} of the throughput"
            )
            notes.append(
                f"no single PSU in the catalog carries {required:.0f} W and {why}: use two {twin.name} "
                f"units (one for the CPU, board and {half} cards, one for the other {n_gpus - half}; join "
                "them with an add2psu relay board or use a dual-PSU case), cards at full power"
            )
        else:
            raise UsageError(
                f"no PSU combination in the catalog carries {n_gpus} x {gpu_tdp_w:g} W cards "
                f"({required:.0f} W with headroom), even two units with each card capped to "
                f"{floor:.0f} W",
                hint="fewer cards, cards with lower board power, or a server chassis with redundant PSUs",
            )
    if limit is not None:
        gpu_w = limit * n_gpus
        sustained = gpu_w + cpu_w + BASE_W
    eff = efficiency(psu)
    wall = sustained / eff
    if wall > CIRCUIT_LIMIT_W:
        twenty = (
            f" or a dedicated 20 A / 120 V circuit ({CIRCUIT_20A_W:.0f} W; Lambda)"
            if wall <= CIRCUIT_20A_W
            else ""
        )
        notes.append(
            f"wall draw ~{wall:.0f} W exceeds the {CIRCUIT_LIMIT_W:.0f} W a US 15 A / 120 V household "
            f"circuit carries continuously: use a 230 V circuit ({CIRCUIT_230V_W:.0f} W at 16 A){twenty}"
        )
    else:
        notes.append(
            f"wall draw ~{wall:.0f} W fits a US 15 A / 120 V circuit ({CIRCUIT_LIMIT_W:.0f} W continuous)"
        )
    return PowerBudget(
        gpu_w, cpu_w, sustained, required, transient, rule, wall, psu, limit, tuple(notes), count, eff, perf
    )
