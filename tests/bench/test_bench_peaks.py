"""CPU peak = cores x clock x FLOPs/cycle, checked on CPUs whose peak is published.

The clock of a peak is the highest the cores reach (cpufreq max, or measured), so a peak is an
upper bound; with only the model name's base clock known the formula is TOP500's Rpeak, which
computes exactly this way from the advertised (base) clock ("Rpeak values are
calculated using the advertised clock rate of the CPU", top500.org list pages), so a system's
Rpeak divided by its core count is a published per-core peak:
- Frontera (TACC), Xeon Platinum 8280 28C 2.7GHz: 38,745.9 TFlop/s over 448,448 cores = 86.4 GFlop/s per core.
- SuperMUC phase 1 (LRZ), Xeon E5-2680 8C 2.7GHz: 3,185.1 TFlop/s over 147,456 cores = 21.6 GFlop/s per core.
And Intel's Haswell-EP figure for the Xeon E5-2680 v3 (12 cores, 2.5 GHz): 480 GFlop/s double precision.
"""

from __future__ import annotations

import pytest

from envcheck.bench import peaks

SKX = ["sse4_2", "avx", "fma", "avx2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
HSW = ["sse4_2", "avx", "f16c", "fma", "avx2"]
SPR = [*SKX, "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"]


def _peak(**kw: object) -> peaks.CpuPeak:
    got = peaks.cpu_peak(**kw)  # type: ignore[arg-type]
    assert isinstance(got, peaks.CpuPeak), got
    return got


def test_frontera_xeon_platinum_8280_matches_top500_per_core_rpeak() -> None:
    p = _peak(cores=28, model="Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", flags=SKX, dtype="float64")
    assert p.gflops == pytest.approx(28 * 38_745.9e3 / 448_448, rel=1e-3)  # 2419.2
    assert p.clock_source.startswith("base clock from the model name") and not p.upper_bound
    assert p.flops_per_cycle == 32


def test_the_max_clock_wins_over_the_base_clock_so_the_peak_is_an_upper_bound() -> None:
    model = "Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz"
    p = _peak(cores=28, model=model, flags=SKX, dtype="float64", mhz_max=4000)
    assert p.gflops == pytest.approx(28 * 4.0 * 32) and p.clock_source == "max clock" and p.upper_bound


def test_a_vm_without_cpufreq_uses_the_measured_clock_not_the_reported_one() -> None:
    # the EPYC (family 25, model 17: Zen 4) in a VM: cpu MHz 2596, cores boost to ~3.7 GHz
    zen4 = [*SKX, "avx512_bf16"]
    p = _peak(
        cores=2,
        model="AMD EPYC 9R14 96-Core Processor",
        vendor="AuthenticAMD",
        family=25,
        flags=zen4,
        mhz_current=2596.0,
        mhz_measured=3701.0,
    )
    assert p.clock_source == "measured clock" and p.ghz == pytest.approx(3.701)
    assert p.flops_per_cycle == 32  # one 512-bit FMA per cycle on Zen 4
    # both known: the higher one (a measurement on a throttled core must not lower the bound)
    assert _peak(cores=2, model="x", flags=HSW, mhz_max=3500.0, mhz_measured=3300.0).ghz == 3.5
    # nothing but the current clock: a number, flagged as not an upper bound
    current = _peak(cores=2, model="x", flags=HSW, mhz_current=2596.0)
    assert not current.upper_bound and "turbo may exceed it" in current.clock_source


def test_the_fma_unit_count_is_a_function_of_the_cpu_alone() -> None:
    # the same CPU always gets the same count (it once flipped between runs on a Zen 4 VM)
    for _ in range(3):
        assert peaks.avx512_fma_units("AMD EPYC 9R14 96-Core Processor", "AuthenticAMD", family=25) == 1
        assert peaks.avx512_fma_units("AMD EPYC 9R45 Processor", "AuthenticAMD", family=26) == 2
        assert peaks.avx512_fma_units("AMD Ryzen AI 9 HX 370", "AuthenticAMD", family=26) == 1
        # a VM's generic name: AMX proves Sapphire Rapids or later, which has two units
        assert peaks.avx512_fma_units("Intel(R) Xeon(R) Processor", flags=SPR) == 2


def test_supermuc_sandy_bridge_e5_2680_matches_top500_per_core_rpeak() -> None:
    p = _peak(
        cores=8, model="Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz", flags=["sse4_2", "avx"], dtype="float64"
    )
    assert p.gflops == pytest.approx(8 * 3_185.1e3 / 147_456, rel=1e-3)  # 172.8
    assert p.isa == "AVX"


def test_haswell_e5_2680_v3_is_480_gflops_double() -> None:
    p = _peak(cores=12, model="Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", flags=HSW, dtype="float64")
    assert p.gflops == pytest.approx(480.0)
    assert _peak(
        cores=12, model="Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", flags=HSW
    ).gflops == pytest.approx(960.0)


def test_avx512_fma_unit_count_follows_the_sku() -> None:
    # Xeon Gold 5118: one AVX-512 FMA unit (Intel ARK) -> 12 x 2.3 x 16 DP = 441.6
    p = _peak(cores=12, model="Intel(R) Xeon(R) Gold 5118 CPU @ 2.30GHz", flags=SKX, dtype="float64")
    assert p.gflops == pytest.approx(441.6)
    cases = {
        "Intel(R) Xeon(R) Gold 5122 CPU @ 3.60GHz": 2,
        "Intel(R) Xeon(R) Silver 4114 CPU @ 2.20GHz": 1,
        "Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz": 2,
        "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz": 2,
        "Intel(R) Xeon(R) Processor": 2,
        "Intel(R) Core(TM) i7-1165G7 @ 2.80GHz": 1,
        "Intel(R) Core(TM) i9-7900X CPU @ 3.30GHz": 2,
        "Intel(R) Core(TM) i7-7800X CPU @ 3.50GHz": 1,
        "AMD EPYC 9654 96-Core Processor": 1,
        "AMD EPYC 9755 128-Core Processor": 2,
    }
    assert {m: peaks.avx512_fma_units(m) for m in cases} == cases
    # the user's override wins over the guess
    assert peaks.isa_class(SKX, "Intel(R) Xeon(R) Gold 5118 CPU", fma_units=2) == "avx512-2fma"


def test_sixteen_bit_peaks_follow_amx_and_avx512_extensions() -> None:
    spr = dict(cores=56, model="Intel(R) Xeon(R) Platinum 8480+", flags=SPR, mhz_max=2000.0)
    assert _peak(**spr, dtype="float32").flops_per_cycle == 64
    assert _peak(**spr, dtype="bfloat16").flops_per_cycle == 1024  # AMX-BF16
    assert _peak(**spr, dtype="bfloat16").gflops == pytest.approx(56 * 2.0 * 1024)
    assert _peak(**spr, dtype="float16").flops_per_cycle == 128  # AVX512_FP16, no AMX-FP16
    hsw = _peak(cores=4, model="x @ 3.00GHz", flags=HSW, dtype="bfloat16")
    assert hsw.flops_per_cycle == 32 and "computed in FP32" in hsw.isa


def test_older_isas_and_narrow_fma() -> None:
    assert peaks.isa_class(["sse4_2"], "Intel(R) Xeon(R) CPU X5670") == "sse"
    assert peaks.isa_class([], "anything") == "sse"  # x86-64 always has SSE2
    assert peaks.isa_class(HSW, "AMD EPYC 7601 32-Core Processor") == "avx2-fma-128"  # Zen 1
    assert peaks.isa_class(HSW, "AMD EPYC 7742 64-Core Processor") == "avx2-fma"  # Zen 2
    assert (
        peaks.FP32_FLOPS_PER_CYCLE[peaks.isa_class(HSW, "AMD Ryzen 7 1700X Eight-Core Processor") or ""] == 16
    )


def test_missing_facts_give_reasons_not_numbers() -> None:
    assert peaks.cpu_peak(cores=None, model="x", flags=HSW) == "core count unknown"
    assert peaks.cpu_peak(cores=4, model="x", flags=None) == "ISA flags unknown"
    assert "x86 only" in str(peaks.cpu_peak(cores=64, model="Neoverse-N1", flags=["asimd", "atomics"]))
    assert peaks.cpu_peak(cores=4, model="x", flags=HSW) == "CPU clock unknown"
    p = _peak(cores=4, model="x", flags=HSW, mhz_current=3000.0)
    assert p.clock_source.startswith("current clock") and p.gflops == pytest.approx(4 * 3.0 * 32)
    assert p.formula == (
        "4 cores x 3 GHz (current clock; turbo may exceed it) x 32 float32 FLOPs/cycle "
        "(AVX2+FMA (2 FMA units)) = 384.0 GFLOP/s"
    )


def test_pcie_peak_from_generation_and_width() -> None:
    assert peaks.pcie_peak_gbs(4, 16) == pytest.approx(31.5, rel=1e-3)
    assert peaks.pcie_peak_gbs("3", 16) == pytest.approx(15.76)
    assert peaks.pcie_peak_gbs("Gen5", 8) == pytest.approx(31.5, rel=1e-3)
    assert peaks.pcie_peak_gbs(4, 4) == pytest.approx(7.876)  # a card stuck at x4
    assert peaks.pcie_peak_gbs("SXM4 (NVLink 600 GB/s)", None) is None
    assert peaks.pcie_peak_gbs(9, 16) is None
    assert peaks.pcie_peak_gbs(None, 16) is None
