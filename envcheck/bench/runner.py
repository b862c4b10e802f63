"""Run the benchmark child, then set every figure against its device's theoretical peak.

The measuring happens in one child interpreter (torch, or numpy when torch is absent), devices
one after the other so figures do not disturb each other. Everything after that is pure:
``build_report`` turns the child's raw samples, the CPU facts and the NVML links into figures,
which is what the tests exercise with recorded GPU answers.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import envcheck
from envcheck._child import run_python
from envcheck.bench import peaks
from envcheck.bench._timing import PROGRESS
from envcheck.bench.models import BenchReport, DeviceInfo, Figure
from envcheck.errors import UsageError
from envcheck.models import CpuInfo, Gpu

BACKENDS = {"torch": "envcheck.bench._torch", "jax": "envcheck.bench._jax", "numpy": "envcheck.bench._numpy"}
DEVICE_CHOICES = ("all", "cpu", "gpu")
#: seconds the benchmark child may take, by mode
DEFAULT_TIMEOUT = {"quick": 120.0, "full": 900.0}
_SCALE = {"TFLOPS": 1e12, "GB/s": 1e9}

SpecLookup = Callable[[str], Any]


def _has_tpu(root: Path = Path("/")) -> bool:
    """TPU device nodes: /dev/accel* (v2-v4) or VFIO groups (v5e and later)."""
    return any((root / "dev").glob("accel*")) or any((root / "dev/vfio").glob("[0-9]*"))


def pick_backend(name: str, *, root: Path = Path("/")) -> str:
    """``auto``: jax on a TPU machine, else torch (GPUs, pinned memory), else jax, else numpy."""
    name = name.lower()
    if name == "auto":
        installed = [b for b in ("torch", "jax") if importlib.util.find_spec(b) is not None]
        if "jax" in installed and _has_tpu(root):
            return "jax"
        return installed[0] if installed else "numpy"
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}", hint=f"choose from: auto, {', '.join(BACKENDS)}")
    return name


def rate_stats(samples: Sequence[float], work: float, scale: float) -> tuple[float, float, float, float]:
    """(median, low, high, spread %) of the rate ``work / seconds / scale`` over timing samples.

    The spread is the interquartile range of the samples relative to their median: robust to the
    one sample a busy machine spoils, unlike max - min.
    """
    med = statistics.median(samples)
    q1, _, q3 = (
        statistics.quantiles(samples, n=4, method="inclusive") if len(samples) > 1 else (med, med, med)
    )
    return (
        work / med / scale,
        work / max(samples) / scale,
        work / min(samples) / scale,
        100.0 * (q3 - q1) / med,
    )


def _pct(value: float | None, peak: float | None) -> float | None:
    return None if value is None or not peak else round(100.0 * value / peak, 1)


def _cpu_peak(
    cpu: CpuInfo | None,
    threads: int | None,
    dtype: str,
    env: Mapping[str, str],
    mhz_measured: float | None = None,
) -> peaks.CpuPeak | str:
    if cpu is None:
        return "CPU facts unavailable"
    cores = cpu.cores
    for cap in (cpu.usable_cpus, threads):
        if cores and cap:
            cores = min(cores, cap)
    units = env.get("ENVCHECK_CPU_FMA_UNITS", "").strip()
    return peaks.cpu_peak(
        cores=cores,
        model=cpu.model,
        flags=cpu.flags,
        dtype=dtype,
        mhz_max=cpu.mhz_max,
        mhz_current=cpu.mhz_current,
        vendor=cpu.vendor,
        fma_units=int(units) if units.isdigit() else None,
        mhz_measured=mhz_measured,
        family=cpu.family,
    )


def _norm_uuid(uuid: str | None) -> str | None:
    if not uuid:
        return None
    u = uuid.strip().lower()
    return u[4:] if u.startswith("gpu-") else u


def _match_nvml(devices: list[dict[str, Any]], nvml: Sequence[Gpu]) -> dict[str, Gpu]:
    """Bench device label -> NVML GPU: by UUID, else by index when every GPU is the same model."""
    gpus = [d for d in devices if d.get("device", "").startswith("gpu:")]
    by_uuid = {_norm_uuid(g.uuid): g for g in nvml if g.uuid}
    out: dict[str, Gpu] = {}
    for d in gpus:
        g = by_uuid.get(_norm_uuid(d.get("uuid")))
        if g is not None:
            out[d["device"]] = g
    if not out and len(gpus) == len(nvml) and len({g.name for g in nvml}) <= 1:
        out = {d["device"]: g for d, g in zip(gpus, sorted(nvml, key=lambda g: g.index), strict=True)}
    return out


def _pcie(gpu: Gpu | None, spec: Any) -> tuple[float | None, str | None, str | None]:
    """(peak GB/s per direction, basis, link description) of a GPU's PCIe link."""
    link = gpu.pcie if gpu is not None else None
    if link is not None and (link.gen_max or link.gen_current) and (link.width_max or link.width_current):
        gen = link.gen_max or link.gen_current
        width = link.width_max or link.width_current
        peak = peaks.pcie_peak_gbs(gen, width)
        text = f"gen {link.gen_current} x{link.width_current} now, max gen {gen} x{width}"
        if spec is not None and spec.pcie_lanes and width < spec.pcie_lanes:
            text += f" (the card itself is x{spec.pcie_lanes}: check the slot)"
        return peak, f"PCIe gen {gen} x{width} from NVML; {peaks.PCIE_SOURCE}", text
    if spec is not None and spec.pcie_gen and spec.pcie_lanes:
        peak = peaks.pcie_peak_gbs(spec.pcie_gen, spec.pcie_lanes)
        return peak, f"PCIe gen {spec.pcie_gen} x{spec.pcie_lanes} from the card's spec (link not read)", None
    return None, None, None


def default_spec_lookup(name: str) -> Any:
    """The knowledge base's GpuSpec for an NVML/torch device name, or None (also if it is absent)."""
    try:
        from envcheck.knowledge import gpus
    except ImportError:
        return None
    try:
        return gpus.lookup(name)
    except Exception:  # a bad data row must not lose the measured figures
        return None


def _safe_lookup(lookup: SpecLookup, name: str | None) -> Any:
    if not name:
        return None
    try:
        return lookup(name)
    except Exception:  # a broken knowledge base costs the peaks, never the measured figures
        return None


def build_report(
    raw: Mapping[str, Any],
    *,
    mode: str,
    seconds: float,
    cpu: CpuInfo | None,
    nvml: Sequence[Gpu] | None = None,
    spec_lookup: SpecLookup = default_spec_lookup,
    env: Mapping[str, str] | None = None,
    error: str | None = None,
    load: float | None = None,
    mhz_measured: float | None = None,
    clock_note: str | None = None,
) -> BenchReport:
    """Figures with peaks and percentages from the child's raw samples. Pure.

    ``load`` is the 1-minute load average per usable CPU before the run (None: unknown);
    ``mhz_measured`` the clock the dependent-add loop measured (``clock_note``: why there is none).
    """
    env = os.environ if env is None else env
    threads = raw.get("threads")
    dev_rows: list[dict[str, Any]] = [d for d in raw.get("devices", []) if isinstance(d, dict)]
    links = _match_nvml(dev_rows, nvml or [])
    devices: dict[str, DeviceInfo] = {}
    specs: dict[str, Any] = {}
    for d in dev_rows:
        label = d.get("device", "?")
        info = DeviceInfo(
            device=label,
            name=cpu.model if label == "cpu" and cpu else d.get("name"),
            compute_capability=d.get("compute_capability"),
            memory_bytes=d.get("memory_bytes"),
            uuid=d.get("uuid"),
        )
        if label != "cpu":
            spec = _safe_lookup(spec_lookup, d.get("name"))
            specs[label] = spec
            if spec is not None:
                info.spec = f"{spec.name} ({spec.source}; as of {spec.as_of})"
            info.pcie = _pcie(links.get(label), spec)[2]
        devices[label] = info

    figures: list[Figure] = []
    timings: dict[tuple[str, str], list[float]] = {}
    for r in raw.get("results", []):
        if not isinstance(r, dict):
            continue
        label, metric, dtype, unit = (
            r.get("device", "?"),
            r.get("metric", "?"),
            r.get("dtype"),
            r.get("unit", ""),
        )
        samples = [float(s) for s in r.get("samples") or [] if s and s > 0]
        if metric == "matmul-cpu-size" or (metric == "matmul" and dtype == "float32" and label == "cpu"):
            timings[(label, metric)] = samples
        if metric == "matmul-cpu-size":
            continue
        fig = Figure(
            device=label,
            device_name=devices[label].name if label in devices else None,
            metric=metric,
            dtype=dtype,
            unit=unit,
            size=r.get("size"),
            error=r.get("error"),
            skipped=r.get("skipped"),
            inner=r.get("inner"),
        )
        if samples and not fig.error and not fig.skipped:
            med, low, high, spread = rate_stats(samples, float(r["work"]), _SCALE.get(unit, 1.0))
            fig.median, fig.low, fig.high, fig.spread_pct = med, low, high, round(spread, 1)
            fig.repeats = len(samples)
        fig.peak, fig.peak_basis = _peak_for(
            fig, cpu, threads=threads, spec=specs.get(label), link=links.get(label), env=env, mhz=mhz_measured
        )
        _set_pct(fig)
        figures.append(fig)

    figures += _speedups(timings, figures, devices)
    cpu_peak = _cpu_peak(cpu, threads, "float32", env, mhz_measured)
    return BenchReport(
        tool_version=envcheck.__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        mode=mode,
        backend=str(raw.get("backend") or "?"),
        backend_version=raw.get("version"),
        threads=threads,
        seconds=round(seconds, 3),
        cpu_model=cpu.model if cpu else None,
        cpu_peak=cpu_peak.formula if isinstance(cpu_peak, peaks.CpuPeak) else cpu_peak,
        devices=list(devices.values()),
        figures=figures,
        error=error,
        notes=_notes(env, raw.get("backend"), load, clock_note, figures),
    )


def _set_pct(fig: Figure) -> None:
    """The percentage of peak, never above 100: a measurement above a peak proves the peak wrong."""
    pct = _pct(fig.median, fig.peak)
    if pct is not None and pct > 100.0:
        fig.peak_basis = (fig.peak_basis or "") + (
            f"; measured {pct:.0f}% of it, so this peak is not an upper bound here and no percentage is shown"
        )
        pct = None
    fig.achieved_pct = pct


def _peak_for(
    fig: Figure,
    cpu: CpuInfo | None,
    *,
    threads: int | None,
    spec: Any,
    link: Gpu | None,
    env: Mapping[str, str],
    mhz: float | None = None,
) -> tuple[float | None, str | None]:
    """A figure's theoretical peak (in its own unit) and what it rests on; (None, why) if unknown."""
    if fig.device == "cpu":
        if fig.metric == "matmul" and fig.dtype:
            p = _cpu_peak(cpu, threads, fig.dtype, env, mhz)
            if isinstance(p, peaks.CpuPeak):
                return p.gflops / 1000.0, p.formula
            return None, p
        if fig.metric in ("copy", "triad"):
            return None, "DRAM peak needs the memory channels and speed, which are not probed"
        return None, None
    if fig.metric in ("h2d", "d2h"):
        peak, basis, _ = _pcie(link, spec)
        return (peak, basis) if peak else (None, "PCIe link unknown (NVML unavailable)")
    if spec is None:
        return None, f"{fig.device_name or fig.device} is not in the GPU knowledge base"
    origin = f"{spec.name} spec, {spec.as_of}" + (", per chip" if spec.is_tpu else "")
    if fig.metric == "matmul" and fig.dtype == "float32":
        return spec.fp32_tflops, f"{origin} (FP32, no TF32)"
    if fig.metric == "matmul" and fig.dtype in ("bfloat16", "float16"):
        return spec.bf16_tflops_dense, f"{origin} (dense 16-bit tensor, FP32 accumulate: {spec.bf16_basis})"
    if fig.metric in ("copy", "triad"):
        return spec.memory_bw_gbs, f"{origin} (memory bandwidth)"
    return None, None


def _speedups(
    timings: dict[tuple[str, str], list[float]], figures: list[Figure], devices: Mapping[str, DeviceInfo]
) -> list[Figure]:
    """GPU vs CPU on the very same matmul (the CPU's size, float32), per GPU."""
    cpu_t = timings.get(("cpu", "matmul"))
    if not cpu_t:
        return []
    cpu_fig = next(
        (f for f in figures if f.device == "cpu" and f.metric == "matmul" and f.dtype == "float32"), None
    )
    out = []
    for (label, metric), gpu_t in timings.items():
        if metric != "matmul-cpu-size" or not gpu_t:
            continue
        gpu_fig = next(
            (f for f in figures if f.device == label and f.metric == "matmul" and f.dtype == "float32"), None
        )
        peak = None
        basis = None
        if cpu_fig and gpu_fig and cpu_fig.peak and gpu_fig.peak:
            peak = round(gpu_fig.peak / cpu_fig.peak, 1)
            basis = "ratio of the FP32 peaks"
        fig = Figure(
            device=label,
            device_name=devices[label].name if label in devices else None,
            metric="speedup",
            dtype="float32",
            unit="x",
            size=cpu_fig.size if cpu_fig else None,
            median=statistics.median(cpu_t) / statistics.median(gpu_t),
            low=min(cpu_t) / max(gpu_t),
            high=max(cpu_t) / min(gpu_t),
            repeats=min(len(cpu_t), len(gpu_t)),
            peak=peak,
            peak_basis=basis,
        )
        _set_pct(fig)
        out.append(fig)
    return out


def _notes(
    env: Mapping[str, str],
    backend: Any,
    load: float | None,
    clock_note: str | None = None,
    figures: Sequence[Figure] = (),
) -> list[str]:
    notes = []
    if clock_note:
        notes.append(f"CPU clock not measured ({clock_note}): the CPU peak may be below what turbo reaches")
    skipped = [f"{f.device} {f.dtype}" for f in figures if f.skipped and f.skipped.startswith("no fast ")]
    if skipped:
        notes.append(f"skipped for lack of a fast path on the device: {', '.join(skipped)}")
    core = env.get("OPENBLAS_CORETYPE")
    if core and backend == "numpy":
        notes.append(
            f"OPENBLAS_CORETYPE={core} is set: numpy's OpenBLAS runs that core's kernels, not the best ones"
        )
    if load is not None and load > 0.5:
        notes.append(f"the machine was busy before the run (load {load:.1f} per CPU): figures may be low")
    return notes


def load_per_cpu() -> float | None:
    """The 1-minute load average divided by the CPUs this process may use, or None."""
    try:
        return os.getloadavg()[0] / max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return None


def _probe_cpu() -> CpuInfo | None:
    try:
        from envcheck.probes import ProbeContext
        from envcheck.probes.cpu import probe
    except ImportError:
        return None
    try:
        return probe(ProbeContext())
    except Exception:  # the CPU probe never raises by contract; belt and braces for a bench
        return None


def _probe_nvml(timeout: float) -> list[Gpu]:
    """The GPUs as NVML sees them (for PCIe links), or [] when the NVIDIA probe is unavailable."""
    try:
        from envcheck.probes import ProbeContext
        from envcheck.probes.nvidia import probe
    except ImportError:
        return []
    try:
        return list(probe(ProbeContext(timeout=timeout)).gpus or [])
    except Exception:  # NVML trouble costs the PCIe peak, never the measured figures
        return []


def _progress_lines(progress: Callable[[str, str | None], None] | None) -> Callable[[str], None] | None:
    if progress is None:
        return None

    def on_line(line: str) -> None:
        if line.startswith(PROGRESS):
            progress("bench", " ".join(line[len(PROGRESS) :].split()))

    return on_line


def _clock(cpu: CpuInfo | None, devices: str) -> tuple[float | None, str | None]:
    """The measured clock when the CPU figures need one the kernel does not give (most VMs)."""
    if devices == "gpu" or (cpu is not None and cpu.mhz_max):
        return None, None
    from envcheck.bench import _clock as clock

    return clock.measure()


def run_bench(
    *,
    quick: bool = True,
    backend: str = "auto",
    devices: str = "all",
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    progress: Callable[[str, str | None], None] | None = None,
    fixed_sizes: bool = False,
) -> BenchReport:
    """Measure in a child interpreter and return the figures set against their peaks.

    ``progress(task, doing)`` hears what the child measures now (for a live display).
    ``fixed_sizes``: every matmul at the mode's fixed size instead of one sized by the time
    budget, so figures of several machines (``envcheck cluster``) measure the same work.
    """
    if devices not in DEVICE_CHOICES:
        raise UsageError(
            f"unknown device choice {devices!r}", hint=f"choose from: {', '.join(DEVICE_CHOICES)}"
        )
    name = pick_backend(backend)
    mode = "quick" if quick else "full"
    limit = timeout if timeout is not None else DEFAULT_TIMEOUT[mode]
    if not (0 < limit < float("inf")):
        raise UsageError(f"timeout must be a positive number of seconds, got {limit:g}")
    notes_env = dict(os.environ if env is None else env)
    call = f"main(quick={quick!r}, devices={devices!r}, fixed={fixed_sizes!r})"
    code = f"from {BACKENDS[name]} import main\n{call}\n"
    load = load_per_cpu()
    start = time.perf_counter()
    cpu = _probe_cpu()
    if progress is not None:
        progress("bench", "measuring the CPU clock")
    mhz, clock_note = _clock(cpu, devices)
    if progress is not None:
        progress("bench", f"starting {name}")
    child = run_python(code, timeout=limit, env=notes_env, on_stderr=_progress_lines(progress))
    seconds = time.perf_counter() - start
    raw = child.value if isinstance(child.value, dict) else {}
    error = None if child.ok else (child.error or "no answer")
    gpus_seen = any(
        str(d.get("device", "")).startswith("gpu:") for d in raw.get("devices", []) if isinstance(d, dict)
    )
    return build_report(
        raw,
        mode=mode,
        seconds=seconds,
        cpu=cpu,
        nvml=_probe_nvml(10.0) if gpus_seen else [],
        env=notes_env,
        error=error,
        load=load,
        mhz_measured=mhz,
        clock_note=clock_note,
    )
