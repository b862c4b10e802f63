"""Child program: ``envcheck bench`` measurements with PyTorch on the CPU and every CUDA GPU.

The torch adapter of envcheck bench: run as ``main(quick)`` inside a child interpreter only.
Every figure is the same operation on every device: square matmuls (2 n^3 FLOPs), STREAM copy
(``b = a``: 2 x bytes moved) and triad (``a = b + s*c``: 3 x bytes), and pinned host<->device
copies. float32 on GPUs is measured with TF32 off, so it is comparable to the FP32 peak.
Matmul sizes follow the time budget (``_timing.sized``), and a 16-bit type the device has no
fast path for is skipped with the rate that shows it (``_timing.fast_path``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from envcheck.bench import _timing as t

DTYPES = ("float32", "bfloat16", "float16")


def _maker(torch: Any, dev: str) -> Callable[[str, int], Callable[[], Any]]:
    def make(dtype: str, n: int) -> Callable[[], Any]:
        dt = getattr(torch, dtype)
        a = torch.randn(n, n, device=dev).to(dt)
        b = torch.randn(n, n, device=dev).to(dt)
        out = torch.empty(n, n, device=dev, dtype=dt)
        return lambda: torch.mm(a, b, out=out)

    return make


def _matmul(
    sink: t.Sink,
    torch: Any,
    dev: str,
    p: t.Plan,
    budget: float,
    *,
    dtype: str,
    limit: int,
    reference: dict[str, float],
    metric: str = "matmul",
    fixed_n: int | None = None,
) -> int | None:
    """Measure one matmul figure; returns the size used (None when skipped or failed)."""
    make = _maker(torch, dev)
    sync = _sync(torch, dev)
    used: dict[str, int] = {}

    def run() -> dict[str, Any]:
        if dtype != "float32":
            t.fast_path(make, sync, dtype, device=_label(dev), p=p, reference=reference)
        if fixed_n is not None:
            n, fn = fixed_n, make(dtype, fixed_n)
        else:
            n, fn, _ = t.sized(
                lambda k: make(dtype, k), sync, start=p.matmul_start, limit=limit, target_s=p.target_call_s
            )
        used["n"] = n
        return {**t.measure(fn, sync, p, budget), "work": 2.0 * n**3, "size": f"n={n}"}

    sink.result(_label(dev), metric, dtype, unit="TFLOPS", work=0.0, size="", run=run)
    return used.get("n")


def _stream(sink: t.Sink, torch: Any, dev: str, elems: int, *, p: t.Plan, budget: float) -> None:
    arrays: dict[str, Any] = {}

    def setup() -> None:
        if not arrays:
            arrays.update(
                a=torch.rand(elems, device=dev),
                b=torch.rand(elems, device=dev),
                c=torch.rand(elems, device=dev),
            )

    def copy() -> dict[str, Any]:
        setup()
        return t.measure(lambda: arrays["b"].copy_(arrays["a"]), _sync(torch, dev), p, budget)

    def triad() -> dict[str, Any]:
        setup()
        a, b, c = arrays["a"], arrays["b"], arrays["c"]
        return t.measure(lambda: torch.add(b, c, alpha=3.0, out=a), _sync(torch, dev), p, budget)

    nbytes = elems * 4
    size = f"{nbytes >> 20} MiB"
    sink.result(_label(dev), "copy", None, unit="GB/s", work=2.0 * nbytes, size=size, run=copy)
    sink.result(_label(dev), "triad", None, unit="GB/s", work=3.0 * nbytes, size=size, run=triad)
    arrays.clear()


def _transfers(sink: t.Sink, torch: Any, dev: str, nbytes: int, *, p: t.Plan, budget: float) -> None:
    buffers: dict[str, Any] = {}

    def setup() -> None:
        if not buffers:
            elems = nbytes // 4
            buffers.update(host=torch.empty(elems).pin_memory(), dev=torch.empty(elems, device=dev))

    def h2d() -> dict[str, Any]:
        setup()
        return t.measure(
            lambda: buffers["dev"].copy_(buffers["host"], non_blocking=True), _sync(torch, dev), p, budget
        )

    def d2h() -> dict[str, Any]:
        setup()
        return t.measure(
            lambda: buffers["host"].copy_(buffers["dev"], non_blocking=True), _sync(torch, dev), p, budget
        )

    size = f"{nbytes >> 20} MiB pinned"
    sink.result(_label(dev), "h2d", None, unit="GB/s", work=float(nbytes), size=size, run=h2d)
    sink.result(_label(dev), "d2h", None, unit="GB/s", work=float(nbytes), size=size, run=d2h)
    buffers.clear()


def _sync(torch: Any, dev: str) -> Any:
    if dev.startswith("cuda"):
        return lambda: torch.cuda.synchronize(dev)
    return lambda: None


def _label(dev: str) -> str:
    return "cpu" if dev == "cpu" else "gpu:" + dev.split(":")[1]


def main(quick: bool = True, devices: str = "all", fixed: bool = False) -> None:
    """Measure every figure on the CPU (unless ``devices == "gpu"``) and on every CUDA GPU.

    ``fixed``: every matmul at the plan's fixed size, so figures of several machines compare.
    """
    torch = importlib.import_module("torch")
    sink = t.Sink("torch")
    sink.doc["version"] = torch.__version__
    sink.doc["threads"] = torch.get_num_threads()
    p = t.plan(quick)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    torch.backends.cuda.matmul.allow_tf32 = False
    for i in range(gpus):
        props = torch.cuda.get_device_properties(i)
        sink.doc["devices"].append(
            {
                "device": f"gpu:{i}",
                "name": props.name,
                "uuid": str(getattr(props, "uuid", "") or "") or None,
                "compute_capability": f"{props.major}.{props.minor}",
                "memory_bytes": props.total_memory,
            }
        )
    sink.doc["devices"].insert(0, {"device": "cpu", "name": "cpu"})
    sink.emit()
    on_cpu = devices in ("all", "cpu")
    on_gpu = devices in ("all", "gpu")
    # 5 figures on the CPU, 8 per GPU share the run's time budget
    budget = p.per_figure(5 * on_cpu + 8 * gpus * on_gpu)
    reference: dict[str, float] = {}
    cpu_n: int | None = None
    if on_cpu:
        for dtype in DTYPES:
            n = _matmul(
                sink, torch, "cpu", p, budget, dtype=dtype, limit=p.cpu_matmul_max, reference=reference
            )
            cpu_n = n if dtype == "float32" else cpu_n
        _stream(sink, torch, "cpu", p.cpu_stream_elems, p=p, budget=budget)
    if on_gpu:
        for i in range(gpus):
            dev = f"cuda:{i}"
            for dtype in DTYPES:
                _matmul(
                    sink, torch, dev, p, budget, dtype=dtype, limit=p.gpu_matmul_max, reference=reference,
                    fixed_n=p.matmul_n(True) if fixed else None,
                )  # fmt: skip
            # the CPU's matmul on this GPU: the speedup compares the very same operation
            _matmul(
                sink, torch, dev, p, budget, dtype="float32", limit=p.gpu_matmul_max, reference=reference,
                metric="matmul-cpu-size", fixed_n=cpu_n or p.matmul_start,
            )  # fmt: skip
            _stream(sink, torch, dev, p.gpu_stream_elems, p=p, budget=budget)
            _transfers(sink, torch, dev, p.transfer_bytes, p=p, budget=budget)
            torch.cuda.empty_cache()
