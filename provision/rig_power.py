"""Power for a workstation: PSU size with transient headroom, the old rule of thumb, the wall circuit.

The formula (cost-anchors 4.1, stated so users can check it):

    sustained_w = sum(GPU board power) + CPU package power + 150 W (board, RAM, drives, fans)
    psu_w       >= 1.25 x sustained_w          (PSU at <= 80 % of its rating under load)
    transient_w = 2 x sum(GPU board power) + CPU + 150 W

GPUs draw 2x (ATX 3.0 excursion spec: 200 % for 100 us; Intel: up to 3x for 100 us) in short
spikes. An ATX 3.0 unit is built to ride 200 % excursions, so the 1.25x rule covers them; an
ATX 2.x unit must carry ``transient_w`` as continuous capacity or it may trip its protection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from provision.catalog import Psu

BASE_W = 150.0
LOAD_FACTOR = 1.25
TRANSIENT_FACTOR = 2.0
#: Lambda: keep a workstation at <= 1,440 W (15 A x 120 V x 80 % continuous)
CIRCUIT_LIMIT_W = 1440.0
#: wall draw = DC load / efficiency; 0.90 is 80 PLUS Gold-Platinum territory at 50-80 % load
PSU_EFFICIENCY = 0.90


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
    #: per-card power limit (W) needed to fit the largest PSU, None when not needed
    power_limit_w: float | None
    notes: tuple[str, ...]


def rule_of_thumb(n_gpus: int) -> float:
    """The old "500 W + 150 W per GPU" sizing rule."""
    return 500.0 + 150.0 * n_gpus


def _fits(psu: Psu, required: float, transient: float) -> bool:
    if psu.watts < required:
        return False
    # ATX 3.0-compliant at this load: rides 200 % excursions; otherwise it must carry the spike
    return psu.atx3_w >= required or psu.watts >= transient


def budget(gpu_tdp_w: float, n_gpus: int, cpu_w: float, psus: Sequence[Psu]) -> PowerBudget:
    """Size the PSU for ``n_gpus`` cards of ``gpu_tdp_w`` and say what the limits imply."""
    gpu_w = gpu_tdp_w * n_gpus
    sustained = gpu_w + cpu_w + BASE_W
    required = math.ceil(LOAD_FACTOR * sustained)
    transient = TRANSIENT_FACTOR * gpu_w + cpu_w + BASE_W
    rule = rule_of_thumb(n_gpus)
    notes: list[str] = [
        f"PSU >= 1.25 x ({n_gpus} x {gpu_tdp_w:g} W GPU + {cpu_w:g} W CPU + {BASE_W:g} W rest) "
        f"= {required:.0f} W; "
        f"GPU spikes reach ~{transient:.0f} W for ~100 us (2x GPU power): an ATX 3.0 unit rides them, "
        f"an ATX 2.x unit would need >= {transient:.0f} W"
    ]
    if rule < required:
        notes.append(
            f"the old 500 W + 150 W/GPU rule says {rule:.0f} W, {required - rule:.0f} W short: it assumed "
            f"~150-250 W cards; these draw {gpu_tdp_w:g} W each"
        )
    else:
        notes.append(f"the old 500 W + 150 W/GPU rule ({rule:.0f} W) still covers this build")
    candidates = sorted(
        (p for p in psus if _fits(p, required, transient)), key=lambda p: (p.price_usd, p.watts)
    )
    psu = candidates[0] if candidates else None
    limit = None
    if psu is None and psus:
        psu = max(psus, key=lambda p: (p.atx3_w, p.watts))
        usable = min(psu.watts, psu.atx3_w or psu.watts) / LOAD_FACTOR
        limit = math.floor((usable - cpu_w - BASE_W) / n_gpus / 10) * 10
        notes.append(
            f"no single PSU in the catalog carries {required:.0f} W: power-limit each card to {limit} W "
            f"(`sudo nvidia-smi -pl {limit}`) on the {psu.name}, or use two PSUs"
        )
        gpu_w = limit * n_gpus
        sustained = gpu_w + cpu_w + BASE_W
    wall = sustained / PSU_EFFICIENCY
    if wall > CIRCUIT_LIMIT_W:
        notes.append(
            f"wall draw ~{wall:.0f} W exceeds the {CIRCUIT_LIMIT_W:.0f} W "
            "a US 15 A / 120 V household circuit "
            f"carries continuously: use a dedicated 20 A circuit or 230 V (Lambda)"
        )
    else:
        notes.append(
            f"wall draw ~{wall:.0f} W fits a US 15 A / 120 V circuit ({CIRCUIT_LIMIT_W:.0f} W continuous)"
        )
    return PowerBudget(gpu_w, cpu_w, sustained, required, transient, rule, wall, psu, limit, tuple(notes))
