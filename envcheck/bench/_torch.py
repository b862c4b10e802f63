"""Child program: ``envcheck bench`` measurements with PyTorch on the CPU and every CUDA GPU.

The torch adapter of envcheck bench: run as ``main(quick)`` inside a child interpreter only.
Every figure is the same operation on every device: square matmuls (2 n^3 FLOPs), STREAM copy
(``b = a``: 2 x bytes moved) and triad (``a = b + s*c``: 3 x bytes), and pinned host<->device
copies. float32 on GPUs is measured with TF32 off, so it is comparable to the FP32 peak.
"""

from __future__ import annotations

import importlib
from typing import Any

from envcheck.bench import _timing as t


def _matmul(
    sink: t.Sink, torch: Any, dev: str, *, n: int, dtype: str, p: t.Plan, metric: str = "matmul"
) -> None:
    def run() -> dict[str, Any]:
        dt = getattr(torch, dtype)
        a = torch.randn(n, n, device=dev).to(dt)
        b = torch.randn(n, n, device=dev).to(dt)
        out = torch.empty(n, n, device=dev, dtype=dt)
        return t.measure(lambda: torch.mm(a, b, out=out), _sync(torch, dev), p)

    sink.result(_label(dev), metric, dtype, unit="TFLOPS", work=2.0 * n**3, size=f"n={n}", run=run)


def _stream(sink: t.Sink, torch: Any, dev: str, elems: int, p: t.Plan) -> None:
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
        return t.measure(lambda: arrays["b"].copy_(arrays["a"]), _sync(torch, dev), p)

    def triad() -> dict[str, Any]:
        setup()
        a, b, c = arrays["a"], arrays["b"], arrays["c"]
        return t.measure(lambda: torch.add(b, c, alpha=3.0, out=a), _sync(torch, dev), p)

    nbytes = elems * 4
    size = f"{nbytes >> 20} MiB/array"
    sink.result(_label(dev), "copy", None, unit="GB/s", work=2.0 * nbytes, size=size, run=copy)
    sink.result(_label(dev), "triad", None, unit="GB/s", work=3.0 * nbytes, size=size, run=triad)
    arrays.clear()


def _transfers(sink: t.Sink, torch: Any, dev: str, nbytes: int, p: t.Plan) -> None:
    buffers: dict[str, Any] = {}

    def setup() -> None:
        if not buffers:
            elems = nbytes // 4
            buffers.update(host=torch.empty(elems).pin_memory(), dev=torch.empty(elems, device=dev))

    def h2d() -> dict[str, Any]:
        setup()
        return t.measure(
            lambda: buffers["dev"].copy_(buffers["host"], non_blocking=True), _sync(torch, dev), p
        )

    def d2h() -> dict[str, Any]:
        setup()
        return t.measure(
            lambda: buffers["host"].copy_(buffers["dev"], non_blocking=True), _sync(torch, dev), p
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


def main(quick: bool = True, devices: str = "all") -> None:
    """Measure every figure on the CPU (unless ``devices == "gpu"``) and on every CUDA GPU."""
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
    if devices in ("all", "cpu"):
        for dtype in ("float32", "bfloat16", "float16"):
            _matmul(sink, torch, "cpu", n=p.cpu_matmul_n, dtype=dtype, p=p)
        _stream(sink, torch, "cpu", p.cpu_stream_elems, p)
    if devices in ("all", "gpu"):
        for i in range(gpus):
            dev = f"cuda:{i}"
            for dtype in ("float32", "bfloat16", "float16"):
                _matmul(sink, torch, dev, n=p.gpu_matmul_n, dtype=dtype, p=p)
            # the CPU's matmul on this GPU: the speedup compares the very same operation
            _matmul(sink, torch, dev, n=p.cpu_matmul_n, dtype="float32", p=p, metric="matmul-cpu-size")
            _stream(sink, torch, dev, p.gpu_stream_elems, p)
            _transfers(sink, torch, dev, p.transfer_bytes, p)
            torch.cuda.empty_cache()
