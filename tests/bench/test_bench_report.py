"""From the benchmark child's raw samples to figures with peaks: pure, so GPU paths are testable.

The raw answers below have the shape the torch child prints (envcheck/bench/_torch.py) on a
one-GPU machine; the NVML side is the envcheck Gpu model as the nvidia probe fills it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envcheck.bench.models import Figure
from envcheck.bench.runner import build_report, pick_backend, rate_stats, run_bench
from envcheck.errors import UsageError
from envcheck.knowledge.gpus import lookup
from envcheck.models import CpuInfo, Gpu, Pcie

CPU = CpuInfo(model="Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", vendor="GenuineIntel", cores=20, threads=40,
              usable_cpus=40, flags=["avx", "fma", "avx2", "avx512f"])  # fmt: skip
UUID = "58d2d0d5-4b5a-11ee-9c3a-0242ac120002"


def _row(
    device: str, metric: str, dtype: str | None, unit: str, work: float, seconds: float, **extra: Any
) -> dict[str, Any]:
    return {"device": device, "metric": metric, "dtype": dtype, "unit": unit, "work": work, "size": "n=?",
            "samples": [seconds * f for f in (1.0, 0.98, 1.02, 1.0, 1.1)], "inner": 3, **extra}  # fmt: skip


def _raw() -> dict[str, Any]:
    n_cpu, n_gpu = 2048, 8192
    return {
        "backend": "torch",
        "version": "2.5.1+cu124",
        "threads": 20,
        "devices": [
            {"device": "cpu", "name": "cpu"},
            {"device": "gpu:0", "name": "NVIDIA A100-SXM4-80GB", "uuid": UUID, "compute_capability": "8.0"},
        ],
        "results": [
            _row("cpu", "matmul", "float32", "TFLOPS", 2.0 * n_cpu**3, 0.02),
            {
                "device": "cpu",
                "metric": "matmul",
                "dtype": "float16",
                "unit": "TFLOPS",
                "work": 1.0,
                "size": "n=2048",
                "skipped": "RuntimeError: \"addmm\" not implemented for 'Half'",
            },
            _row("cpu", "copy", None, "GB/s", 2.0 * 2**29, 0.1),
            _row("gpu:0", "matmul", "float32", "TFLOPS", 2.0 * n_gpu**3, 0.06),
            _row("gpu:0", "matmul", "bfloat16", "TFLOPS", 2.0 * n_gpu**3, 0.004),
            _row("gpu:0", "matmul-cpu-size", "float32", "TFLOPS", 2.0 * n_cpu**3, 0.001),
            _row("gpu:0", "triad", None, "GB/s", 3.0 * 2**30, 0.002),
            _row("gpu:0", "h2d", None, "GB/s", 2.0**30, 0.05),
            {
                "device": "gpu:0",
                "metric": "d2h",
                "dtype": None,
                "unit": "GB/s",
                "work": 1.0,
                "size": "1 GiB",
                "error": "RuntimeError: CUDA error: an illegal memory access was encountered",
            },
        ],
    }


def _nvml(gen: int = 4, width: int = 16) -> list[Gpu]:
    pcie = Pcie(gen_current=1, gen_max=gen, width_current=width, width_max=width)
    return [Gpu(index=0, name="NVIDIA A100-SXM4-80GB", uuid="GPU-" + UUID, pcie=pcie)]


def _fig(figs: list[Figure], device: str, metric: str, dtype: str | None = None) -> Figure:
    return next(f for f in figs if f.device == device and f.metric == metric and f.dtype == dtype)


def test_rate_stats_median_range_and_interquartile_spread() -> None:
    med, low, high, spread = rate_stats([2.0, 1.0, 4.0, 2.0, 2.0], work=8.0, scale=1.0)
    assert (med, low, high) == (4.0, 2.0, 8.0)
    assert spread == pytest.approx(0.0)  # the quartiles are both 2.0: one outlier does not count
    assert rate_stats([1.0], work=1e12, scale=1e12) == (1.0, 1.0, 1.0, 0.0)


def test_gpu_figures_get_spec_peaks_pcie_peak_and_the_speedup() -> None:
    spec = lookup("NVIDIA A100-SXM4-80GB")
    assert spec is not None and spec.fp32_tflops and spec.bf16_tflops_dense and spec.memory_bw_gbs
    report = build_report(_raw(), mode="quick", seconds=3.0, cpu=CPU, nvml=_nvml(), env={})
    figs = report.figures

    fp32 = _fig(figs, "gpu:0", "matmul", "float32")
    assert fp32.median == pytest.approx(2.0 * 8192**3 / 0.06 / 1e12)
    assert fp32.peak == spec.fp32_tflops
    assert fp32.median is not None and fp32.low is not None and fp32.high is not None
    assert fp32.achieved_pct == pytest.approx(round(100 * fp32.median / spec.fp32_tflops, 1))
    assert fp32.repeats == 5 and fp32.low < fp32.median < fp32.high
    assert _fig(figs, "gpu:0", "matmul", "bfloat16").peak == spec.bf16_tflops_dense
    assert _fig(figs, "gpu:0", "triad").peak == spec.memory_bw_gbs

    h2d = _fig(figs, "gpu:0", "h2d")
    assert h2d.peak == pytest.approx(31.5, rel=1e-3)  # gen 4 x16 from NVML, not the idle gen 1
    assert h2d.peak_basis is not None and "gen 4 x16 from NVML" in h2d.peak_basis
    assert (
        _fig(figs, "gpu:0", "d2h").error
        == "RuntimeError: CUDA error: an illegal memory access was encountered"
    )
    assert report.failed

    speed = _fig(figs, "gpu:0", "speedup", "float32")
    assert speed.median == pytest.approx(20.0)  # 0.02 s on the CPU vs 0.001 s on the GPU, same n
    cpu_peak = 20 * 2.5 * 64 / 1000  # Gold 6248: 20 cores x 2.5 GHz x 64 FP32 FLOPs/cycle
    assert _fig(figs, "cpu", "matmul", "float32").peak == pytest.approx(cpu_peak)
    assert speed.peak == pytest.approx(round(spec.fp32_tflops / cpu_peak, 1))
    assert not any(f.metric == "matmul-cpu-size" for f in figs)

    gpu = next(d for d in report.devices if d.device == "gpu:0")
    assert gpu.pcie == "gen 1 x16 now, max gen 4 x16"
    assert gpu.spec is not None and spec.as_of in gpu.spec
    assert report.cpu_peak is not None and report.cpu_peak.endswith("= 3,200.0 GFLOP/s")


def test_cpu_figures_skips_and_unknown_peaks() -> None:
    report = build_report(_raw(), mode="full", seconds=1.0, cpu=CPU, nvml=[], env={})
    half = _fig(report.figures, "cpu", "matmul", "float16")
    assert half.skipped and half.median is None and half.achieved_pct is None
    copy = _fig(report.figures, "cpu", "copy")
    assert copy.median == pytest.approx(2.0 * 2**29 / 0.1 / 1e9) and copy.peak is None
    assert copy.peak_basis is not None and "not probed" in copy.peak_basis


def test_threads_cap_the_cpu_peak_and_fma_override_is_honoured() -> None:
    raw = _raw() | {"threads": 4}
    report = build_report(raw, mode="quick", seconds=1.0, cpu=CPU, env={"ENVCHECK_CPU_FMA_UNITS": "1"})
    fp32 = _fig(report.figures, "cpu", "matmul", "float32")
    assert fp32.peak == pytest.approx(4 * 2.5 * 32 / 1000)


def test_unknown_gpu_and_missing_nvml_still_keep_the_figures() -> None:
    raw = _raw()
    raw["devices"][1]["name"] = "NVIDIA Mystery GPU 9000"
    report = build_report(raw, mode="quick", seconds=1.0, cpu=None, nvml=None, env={})
    fp32 = _fig(report.figures, "gpu:0", "matmul", "float32")
    assert fp32.median is not None and fp32.peak is None
    assert fp32.peak_basis == "NVIDIA Mystery GPU 9000 is not in the GPU knowledge base"
    assert _fig(report.figures, "gpu:0", "h2d").peak is None
    assert report.cpu_peak == "CPU facts unavailable"


def test_a_broken_spec_lookup_costs_only_the_peaks() -> None:
    def broken(name: str) -> Any:
        raise KeyError(name)

    report = build_report(_raw(), mode="quick", seconds=1.0, cpu=CPU, spec_lookup=broken, env={})
    triad = _fig(report.figures, "gpu:0", "triad")
    assert triad.median is not None and triad.peak is None


def test_nvml_match_by_index_only_for_identical_gpus() -> None:
    raw = _raw()
    raw["devices"][1]["uuid"] = None
    report = build_report(raw, mode="quick", seconds=1.0, cpu=CPU, nvml=_nvml(gen=3, width=8), env={})
    assert _fig(report.figures, "gpu:0", "h2d").peak == pytest.approx(0.985 * 8)
    two = [*_nvml(), Gpu(index=1, name="NVIDIA L4", uuid="GPU-other")]
    report = build_report(raw, mode="quick", seconds=1.0, cpu=CPU, nvml=two, env={})
    assert _fig(report.figures, "gpu:0", "h2d").peak_basis == "PCIe link unknown (NVML unavailable)"


def test_a_card_in_a_narrow_slot_is_pointed_out() -> None:
    raw = _raw()
    raw["devices"][1]["name"] = "NVIDIA GeForce RTX 4090"  # a x16 card per the knowledge base
    nvml = [
        Gpu(index=0, name="NVIDIA GeForce RTX 4090", uuid="GPU-" + UUID, pcie=Pcie(gen_max=4, width_max=4))
    ]
    report = build_report(raw, mode="quick", seconds=1.0, cpu=CPU, nvml=nvml, env={})
    gpu = next(d for d in report.devices if d.device == "gpu:0")
    assert gpu.pcie is not None and gpu.pcie.endswith("(the card itself is x16: check the slot)")
    assert _fig(report.figures, "gpu:0", "h2d").peak == pytest.approx(1.969 * 4)


def test_notes_for_openblas_coretype_and_a_busy_machine() -> None:
    raw = _raw() | {"backend": "numpy"}
    env = {"OPENBLAS_CORETYPE": "Haswell"}
    report = build_report(raw, mode="quick", seconds=1.0, cpu=CPU, env=env, load=0.1)
    assert report.notes == [
        "OPENBLAS_CORETYPE=Haswell is set: numpy's OpenBLAS runs that core's kernels, not the best ones"
    ]
    busy = build_report(_raw(), mode="quick", seconds=1.0, cpu=CPU, env=env, load=1.5)
    assert busy.notes == ["the machine was busy before the run (load 1.5 per CPU): figures may be low"]


def test_auto_backend_prefers_jax_on_a_tpu_machine(tmp_path: Path) -> None:
    assert pick_backend("auto", root=tmp_path) == "torch"  # torch and jax are both installed here
    (tmp_path / "dev/vfio").mkdir(parents=True)
    (tmp_path / "dev/vfio/0").touch()
    assert pick_backend("auto", root=tmp_path) == "jax"


def test_tpu_peaks_are_per_chip_from_the_knowledge_base() -> None:
    spec = lookup("TPU v5e")
    assert spec is not None and spec.is_tpu and spec.bf16_tflops_dense
    raw = {
        "backend": "jax",
        "devices": [{"device": "cpu", "name": "cpu"}, {"device": "tpu:0", "name": "TPU v5e"}],
        "results": [_row("tpu:0", "matmul", "bfloat16", "TFLOPS", 2.0 * 8192**3, 0.01)],
    }
    report = build_report(raw, mode="quick", seconds=1.0, cpu=CPU, env={})
    fig = _fig(report.figures, "tpu:0", "matmul", "bfloat16")
    assert fig.peak == spec.bf16_tflops_dense
    assert fig.peak_basis is not None and "per chip" in fig.peak_basis


def test_bad_choices_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown backend"):
        pick_backend("caffe")
    with pytest.raises(UsageError, match="unknown device"):
        run_bench(devices="fpga")
    assert pick_backend("NUMPY") == "numpy"


# ------------------------------------------------------------------ time budget, fast paths, % <= 100


def test_sizes_grow_until_a_call_takes_the_target_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from envcheck.bench import _timing as t

    class Call:
        def __init__(self, n: int) -> None:
            self.seconds = n / 1024 * 0.002  # 2 ms at n=1024, as if timed

        def __call__(self) -> None: ...

    monkeypatch.setattr(t, "_one_call", lambda fn, sync: fn.seconds)  # a clock no busy machine disturbs
    n, _, one = t.sized(Call, lambda: None, start=256, limit=8192, target_s=0.004)
    assert n == 2048 and one >= 0.004  # 256, 512, 1024 were too quick
    n, _, _ = t.sized(Call, lambda: None, start=256, limit=512, target_s=1.0)
    assert n == 512  # the cap wins over the target


def test_samples_stop_when_the_budget_is_spent() -> None:
    from envcheck.bench import _timing as t

    p = t.QUICK
    start = time.perf_counter()
    out = t.measure(lambda: time.sleep(0.01), lambda: None, p, 0.2)
    took = time.perf_counter() - start
    assert p.min_repeats <= len(out["samples"]) < p.max_repeats and took < 0.6
    assert p.per_figure(5) <= p.figure_s and t.FULL.per_figure(100) == t.FULL.min_figure_s


def test_a_dtype_without_a_fast_path_is_skipped_with_the_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    from envcheck.bench import _timing as t

    rates = {"float32": 1000.0, "bfloat16": 2000.0, "float16": 25.0}  # calls/s at the probe size
    monkeypatch.setattr(t, "rate", lambda fn, sync: fn())

    def make(dtype: str, n: int) -> Callable[[], float]:
        return lambda: rates[dtype]

    ref: dict[str, float] = {}
    with pytest.raises(t.Unavailable, match=r"no fast float16 matmul on this cpu: .* against .* float32"):
        t.fast_path(make, lambda: None, "float16", device="cpu", p=t.QUICK, reference=ref)
    assert ref == {"cpu": 1000.0}  # the float32 rate is measured once per device
    t.fast_path(make, lambda: None, "bfloat16", device="cpu", p=t.QUICK, reference=ref)  # fast: no skip


def test_a_measurement_above_the_peak_shows_no_percentage() -> None:
    cpu = CpuInfo(model="x", cores=2, flags=["avx", "fma", "avx2"], mhz_current=1000.0)
    raw = {
        "backend": "torch",
        "devices": [{"device": "cpu"}],
        "results": [_row("cpu", "matmul", "float32", "TFLOPS", 1e12, 1.0)],  # ~1 TFLOPS
    }
    report = build_report(raw, mode="quick", seconds=1.0, cpu=cpu, env={})
    fig = report.figures[0]
    assert fig.peak is not None and fig.median is not None and fig.median > fig.peak
    assert fig.achieved_pct is None and "not an upper bound" in (fig.peak_basis or "")
