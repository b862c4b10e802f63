"""Child program: ``envcheck bench`` on the CPU with numpy alone, for machines without torch.

numpy hands float32 matmuls to its BLAS (OpenBLAS in the wheels); it has no 16-bit BLAS and
no fused triad, so those figures are reported as unavailable rather than measured wrongly.
"""

from __future__ import annotations

import importlib
from typing import Any

from envcheck.bench import _timing as t


def main(quick: bool = True, devices: str = "all", fixed: bool = False) -> None:
    """Measure the CPU's float32 matmul and copy bandwidth with numpy (``fixed``: see _torch)."""
    np = importlib.import_module("numpy")
    sink = t.Sink("numpy")
    sink.doc["version"] = np.__version__
    sink.doc["devices"] = [{"device": "cpu", "name": "cpu"}]
    sink.emit()
    if devices == "gpu":
        return
    p = t.plan(quick)
    budget = p.per_figure(2)  # float32 matmul and copy: the others are not measured

    def make(n: int) -> Any:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        out = np.empty((n, n), dtype=np.float32)
        return lambda: np.matmul(a, b, out=out)

    def matmul() -> dict[str, Any]:
        if fixed:
            n, fn = p.matmul_n(False), make(p.matmul_n(False))
        else:
            n, fn, _ = t.sized(
                make, lambda: None, start=p.matmul_start, limit=p.cpu_matmul_max, target_s=p.target_call_s
            )
        return {**t.measure(fn, lambda: None, p, budget), "work": 2.0 * n**3, "size": f"n={n}"}

    sink.result("cpu", "matmul", "float32", unit="TFLOPS", work=0.0, size="", run=matmul)
    for dtype in ("bfloat16", "float16"):
        sink.result(
            "cpu",
            "matmul",
            dtype,
            unit="TFLOPS",
            work=0.0,
            size="",
            run=_unavailable(f"numpy has no {dtype} BLAS"),
        )
    elems = p.cpu_stream_elems

    def copy() -> dict[str, Any]:
        a = np.random.default_rng(0).random(elems, dtype=np.float32)
        b = np.empty_like(a)
        return t.measure(lambda: np.copyto(b, a), lambda: None, p, budget)

    size = f"{(elems * 4) >> 20} MiB"
    sink.result("cpu", "copy", None, unit="GB/s", work=2.0 * elems * 4, size=size, run=copy)
    sink.result(
        "cpu",
        "triad",
        None,
        unit="GB/s",
        work=3.0 * elems * 4,
        size=size,
        run=_unavailable("numpy has no fused triad"),
    )


def _unavailable(why: str) -> Any:
    def run() -> dict[str, Any]:
        raise t.Unavailable(why)

    return run
