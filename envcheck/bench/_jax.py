"""Child program: ``envcheck bench`` measurements with JAX on the CPU and its accelerators (TPU, GPU).

The jax adapter of envcheck bench, for TPUs above all (torch cannot reach them): run as
``main(quick)`` inside a child interpreter only. Each figure is one jitted XLA computation,
timed with ``block_until_ready``. float32 matmuls use HIGHEST precision (TPUs otherwise
multiply float32 in bfloat16 passes). Host<->device copies are not measured: JAX has no pinned
host buffers and caches an array's host copy, so the figure would not be what it claims.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from envcheck.bench import _timing as t


def _timed(call: Callable[[], Any], p: t.Plan) -> dict[str, Any]:
    """Measure ``call`` (which returns a JAX array) with a sync that waits for its last result."""
    last: dict[str, Any] = {}

    def fn() -> None:
        last["out"] = call()

    def sync() -> None:
        if "out" in last:
            last["out"].block_until_ready()

    return t.measure(fn, sync, p)


def _matmul(
    sink: t.Sink, jax: Any, dev: Any, label: str, p: t.Plan, *, n: int, dtype: str, metric: str
) -> None:
    def run() -> dict[str, Any]:
        key = jax.random.PRNGKey(0)
        a = jax.device_put(jax.random.normal(key, (n, n), dtype=dtype), dev)
        b = jax.device_put(jax.random.normal(key, (n, n), dtype=dtype), dev)
        mm = jax.jit(lambda x, y: jax.numpy.matmul(x, y, precision=jax.lax.Precision.HIGHEST))
        return _timed(lambda: mm(a, b), p)

    sink.result(label, metric, dtype, unit="TFLOPS", work=2.0 * n**3, size=f"n={n}", run=run)


def _device_figures(sink: t.Sink, jax: Any, dev: Any, label: str, p: t.Plan, *, n: int, elems: int) -> None:
    for dtype in ("float32", "bfloat16", "float16"):
        _matmul(sink, jax, dev, label, p, n=n, dtype=dtype, metric="matmul")
    arrays: dict[str, Any] = {}

    def setup() -> None:
        if not arrays:
            key = jax.random.PRNGKey(1)
            arrays.update(b=jax.device_put(jax.random.uniform(key, (elems,)), dev))
            arrays.update(c=jax.device_put(jax.random.uniform(key, (elems,)), dev))

    def copy() -> dict[str, Any]:
        setup()
        fn = jax.jit(lambda x: x * 1.0)  # a new output buffer: one read and one write per element
        return _timed(lambda: fn(arrays["b"]), p)

    def triad() -> dict[str, Any]:
        setup()
        fn = jax.jit(lambda x, y: x + 3.0 * y)  # fused by XLA into one pass
        return _timed(lambda: fn(arrays["b"], arrays["c"]), p)

    nbytes = elems * 4
    size = f"{nbytes >> 20} MiB/array"
    sink.result(label, "copy", None, unit="GB/s", work=2.0 * nbytes, size=size, run=copy)
    sink.result(label, "triad", None, unit="GB/s", work=3.0 * nbytes, size=size, run=triad)
    arrays.clear()


def main(quick: bool = True, devices: str = "all") -> None:
    """Measure the CPU (unless ``devices == "gpu"``) and every device of JAX's default backend."""
    jax = importlib.import_module("jax")
    sink = t.Sink("jax")
    sink.doc["version"] = jax.__version__
    p = t.plan(quick)
    cpu = jax.devices("cpu")[0]
    accel = [d for d in jax.devices() if d.platform != "cpu"] if jax.default_backend() != "cpu" else []
    sink.doc["devices"] = [{"device": "cpu", "name": "cpu"}] + [
        {"device": f"{'gpu' if d.platform == 'gpu' else d.platform}:{i}", "name": d.device_kind}
        for i, d in enumerate(accel)
    ]
    sink.emit()
    if devices in ("all", "cpu"):
        _device_figures(sink, jax, cpu, "cpu", p, n=p.cpu_matmul_n, elems=p.cpu_stream_elems)
    if devices in ("all", "gpu"):
        for row, dev in zip(sink.doc["devices"][1:], accel, strict=True):
            _device_figures(sink, jax, dev, row["device"], p, n=p.gpu_matmul_n, elems=p.gpu_stream_elems)
            # the CPU's matmul on this device: the speedup compares the very same operation
            n = p.cpu_matmul_n
            _matmul(sink, jax, dev, row["device"], p, n=n, dtype="float32", metric="matmul-cpu-size")
            for metric in ("h2d", "d2h"):
                why = "JAX has no pinned host buffers and caches host copies: measure with --backend torch"
                sink.result(
                    row["device"], metric, None, unit="GB/s", work=1.0, size="", run=_unavailable(why)
                )


def _unavailable(why: str) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        raise t.Unavailable(why)

    return run
