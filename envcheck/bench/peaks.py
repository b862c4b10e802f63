"""Theoretical peaks that ``envcheck bench`` sets its measurements against. Pure functions.

CPU compute peak (the TOP500 "Rpeak" convention)::

    peak FLOP/s = physical cores x clock (Hz) x FLOPs per cycle per core (for the ISA and dtype)
    FLOPs per cycle per core = FMA units x vector lanes x 2 (an FMA is a multiply and an add)

A peak must be an upper bound, so the clock is the highest the cores can run at: the CPU's own
maximum (cpufreq ``cpuinfo_max_freq``) or, where the kernel does not expose it (most VMs), the
clock measured by a dependent-add loop (``envcheck.bench._clock``), whichever is higher. Only
when neither is known does it fall back to the base clock in the model name ("@ 2.50GHz", what
TOP500's Rpeak uses) or the current clock, and says that the turbo may exceed it. Sustained
AVX-512 clocks are lower than the maximum, so a well-tuned GEMM lands anywhere from ~50 to ~95%.

FLOPs per cycle per core, float32 (float64 is half; Source: the per-microarchitecture table of
Stack Overflow question 15655835 "FLOPs per cycle for Sandy Bridge and Haswell SSE2/AVX/AVX2",
which derives each from instruction throughputs in Agner Fog's tables; read 2026-11-22):

    ====================  ====  ==============================================================
    ISA                   FP32  why
    ====================  ====  ==============================================================
    SSE (SSE2..SSE4.2)       8  4-wide add + 4-wide multiply per cycle (Core 2 .. Westmere)
    AVX                     16  8-wide add + 8-wide multiply (Sandy/Ivy Bridge)
    AVX2+FMA, 2x128-bit     16  AMD Zen 1/Zen+, Bulldozer family: two 128-bit FMA pipes
    AVX2+FMA, 2 FMA units   32  two 8-wide FMAs (Haswell .. Comet Lake, Zen 2/3)
    AVX-512, 1 FMA unit     32  one 16-wide FMA: Xeon Bronze/Silver/Gold 5xxx of the 1st and
                                2nd generation, client Core, AMD Zen 4 (512-bit ops on 256-bit pipes)
    AVX-512, 2 FMA units    64  two 16-wide FMAs: Xeon Gold 6xxx/Platinum and every Xeon
                                Scalable since Ice Lake, Skylake-X HEDT, AMD Zen 5 desktop/server
    ====================  ====  ==============================================================

16-bit types: AMX (Sapphire Rapids and later) multiplies BF16 tiles at 1024 FLOPs/cycle/core
(Intel, quoted in Wikipedia "Advanced Matrix Extensions": "2048 INT8 or 1024 BF16 operations
per cycle"), FP16 too with AMX-FP16 (Granite Rapids). AVX512_BF16 / AVX512_FP16 run 2x the FP32
rate (a dot product of pairs per FP32 lane; 32 FP16 lanes). Without any of them a 16-bit
matmul computes in FP32, so the FP32 rate is its peak. The AVX-512 unit count is not in
/proc/cpuinfo: it is inferred from the model name (see ``avx512_fma_units``) and can be
overridden with ENVCHECK_CPU_FMA_UNITS.

PCIe: per-lane, per-direction bandwidth after line encoding (PCI-SIG base specifications 1.0-6.0
as tabulated in Wikipedia "PCI Express", read 2026-11-22): gen 1/2 use 8b/10b, gen 3-5
128b/130b, gen 6 PAM4 with 242/256-byte FLITs. Peak = per-lane rate x link width.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: float32 FLOPs per cycle per core, by ISA class (see the module docstring for sources)
FP32_FLOPS_PER_CYCLE = {
    "sse": 8,
    "avx": 16,
    "avx2-fma-128": 16,
    "avx2-fma": 32,
    "avx512-1fma": 32,
    "avx512-2fma": 64,
}
ISA_LABELS = {
    "sse": "SSE",
    "avx": "AVX",
    "avx2-fma-128": "AVX2+FMA (2x128-bit)",
    "avx2-fma": "AVX2+FMA (2 FMA units)",
    "avx512-1fma": "AVX-512 (1 FMA unit)",
    "avx512-2fma": "AVX-512 (2 FMA units)",
}
#: AMX tile multiply: FLOPs per cycle per core for BF16 (and FP16 with AMX-FP16)
AMX_FLOPS_PER_CYCLE = 1024

#: GB/s per lane and direction, by PCIe generation (source in the module docstring)
PCIE_GBS_PER_LANE = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}
PCIE_SOURCE = (
    "PCI-SIG base specs 1.0-6.0 (per-lane rate after encoding), via Wikipedia 'PCI Express', 2026-11-22"
)


@dataclass(frozen=True)
class CpuPeak:
    """A CPU's theoretical peak for one dtype, with every factor so a reader can check it."""

    gflops: float
    dtype: str
    cores: int
    ghz: float
    flops_per_cycle: int
    isa: str
    clock_source: str
    #: the clock is a maximum (cpufreq or measured), so no measurement can exceed this peak
    upper_bound: bool = True

    @property
    def formula(self) -> str:
        return (
            f"{self.cores} cores x {self.ghz:g} GHz ({self.clock_source}) x {self.flops_per_cycle} "
            f"{self.dtype} FLOPs/cycle ({self.isa}) = {self.gflops:,.1f} GFLOP/s"
        )


def avx512_fma_units(
    model: str | None,
    vendor: str | None = None,
    *,
    family: int | None = None,
    flags: Sequence[str] | None = None,
) -> int:
    """How many 512-bit FMA units a core has (/proc/cpuinfo does not say): a pure function of the
    CPU's identity, so the same CPU always gets the same count, and 2 when in doubt (an upper bound).

    Intel ARK lists "# of AVX-512 FMA Units" per SKU: 1 on 1st/2nd-generation Xeon Bronze, Silver
    and Gold 5xxx (except Gold 5122) and on client Core parts, 2 on Gold 6xxx, Platinum, Skylake-X
    HEDT and on every Xeon Scalable since Ice Lake; every CPU with AMX or AVX512_FP16 (Sapphire
    Rapids and later) has 2. AMD: family 25 (Zen 4) executes 512-bit ops on 256-bit pipes (one
    512-bit FMA per cycle); family 26 (Zen 5) desktop and server parts have full 512-bit pipes,
    the mobile "Ryzen AI" parts 256-bit ones (AMD, Zen 5 architecture disclosures, 2024).
    """
    name = (model or "").replace("(R)", "").replace("(TM)", "")
    have = set(flags or ())
    amd = "AMD" in name or (vendor or "").startswith("AuthenticAMD")
    if amd:
        if family == 25:
            return 1
        if family == 26:
            return 1 if "Ryzen AI" in name else 2
        zen5 = re.search(r"EPYC\s+\d{3}5\b|Ryzen\s+\d\s+9\d{3}|Threadripper\s+(PRO\s+)?99\d5", name)
        return 2 if zen5 else 1
    if have & {"amx_tile", "amx_bf16", "avx512_fp16"}:
        return 2
    if re.search(r"\bCore\b", name):
        return 2 if re.search(r"i[79]-(78[2-9]|79\d|99\d|109\d)\d\w*X", name) else 1
    if re.search(r"\b(Bronze|Silver)\s+[34][12]\d\d", name):
        return 1
    gold5 = re.search(r"\bGold\s+(5[12]\d\d)", name)
    if gold5:
        return 2 if gold5.group(1) == "5122" else 1
    return 2


def isa_class(
    flags: Sequence[str] | None,
    model: str | None,
    vendor: str | None = None,
    fma_units: int | None = None,
    family: int | None = None,
) -> str | None:
    """The row of the FLOPs/cycle table this CPU belongs to, or None for non-x86 or no flags."""
    if flags is None:
        return None
    f = set(flags)
    arm = {"asimd", "sve", "neon"} & f
    if arm:
        return None
    name = model or ""
    if "avx512f" in f:
        units = (
            fma_units if fma_units in (1, 2) else avx512_fma_units(model, vendor, family=family, flags=flags)
        )
        return "avx512-2fma" if units == 2 else "avx512-1fma"
    if "avx2" in f and "fma" in f:
        narrow = re.search(
            r"EPYC\s+7\d\d1|Ryzen\s+(\d\s+)?[12]\d{3}|Threadripper\s+[12]\d{3}|\bFX-|Opteron|\bA(4|6|8|10|12)-",
            name,
        )
        if fma_units == 1 or narrow:
            return "avx2-fma-128"
        return "avx2-fma"
    if "avx" in f:
        return "avx"
    return "sse"


def flops_per_cycle(isa: str, flags: Sequence[str], dtype: str) -> tuple[int, str]:
    """FLOPs per cycle per core for ``dtype`` on this ISA class, and what the figure rests on."""
    fp32 = FP32_FLOPS_PER_CYCLE[isa]
    f = set(flags)
    label = ISA_LABELS[isa]
    if dtype == "float64":
        return fp32 // 2, label
    if dtype == "bfloat16":
        if "amx_bf16" in f:
            return AMX_FLOPS_PER_CYCLE, "AMX-BF16"
        if "avx512_bf16" in f:
            return 2 * fp32, f"{label} + AVX512_BF16"
        return fp32, f"{label}, no BF16 instructions (computed in FP32)"
    if dtype == "float16":
        if "amx_fp16" in f:
            return AMX_FLOPS_PER_CYCLE, "AMX-FP16"
        if "avx512_fp16" in f:
            return 2 * fp32, f"{label} + AVX512_FP16"
        return fp32, f"{label}, no FP16 arithmetic (computed in FP32)"
    return fp32, label


def base_ghz_from_model(model: str | None) -> float | None:
    """The advertised base clock in Intel-style model names ("... CPU E5-2680 v3 @ 2.50GHz")."""
    m = re.search(r"@\s*([0-9.]+)\s*GHz", model or "", re.IGNORECASE)
    return float(m.group(1)) if m else None


def cpu_peak(
    *,
    cores: int | None,
    model: str | None,
    flags: Sequence[str] | None,
    dtype: str = "float32",
    mhz_max: float | None = None,
    mhz_current: float | None = None,
    vendor: str | None = None,
    fma_units: int | None = None,
    mhz_measured: float | None = None,
    family: int | None = None,
) -> CpuPeak | str:
    """The CPU's peak for ``dtype``, or a string saying which fact is missing.

    ``mhz_max``: the CPU's own maximum (cpufreq); ``mhz_measured``: the dependent-add loop's
    clock; the higher of the two is the clock. Without either, the model name's base clock or
    the current clock, marked as not an upper bound.
    """
    if not cores:
        return "core count unknown"
    isa = isa_class(flags, model, vendor, fma_units, family)
    if isa is None:
        return "no FLOPs/cycle table for this CPU's ISA (x86 only)" if flags else "ISA flags unknown"
    maxima = [
        (mhz / 1000, why) for mhz, why in ((mhz_max, "max clock"), (mhz_measured, "measured clock")) if mhz
    ]
    base = base_ghz_from_model(model)
    upper = True
    if maxima:
        ghz, source = max(maxima)
    elif base:
        ghz, source, upper = base, "base clock from the model name; turbo may exceed it", False
    elif mhz_current:
        ghz, source, upper = mhz_current / 1000, "current clock; turbo may exceed it", False
    else:
        return "CPU clock unknown"
    per_cycle, basis = flops_per_cycle(isa, flags or [], dtype)
    return CpuPeak(
        gflops=cores * ghz * per_cycle,
        dtype=dtype,
        cores=cores,
        ghz=round(ghz, 3),
        flops_per_cycle=per_cycle,
        isa=basis,
        clock_source=source,
        upper_bound=upper,
    )


def pcie_peak_gbs(gen: int | str | None, width: int | None) -> float | None:
    """Per-direction PCIe bandwidth of a link (GB/s), or None when gen or width is unknown."""
    if gen is None or not width:
        return None
    try:
        per_lane = PCIE_GBS_PER_LANE[int(str(gen).strip().lower().removeprefix("gen"))]
    except (KeyError, ValueError):
        return None
    return per_lane * width
