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


class _Last:
    """A call returning a JAX array, and a sync that waits for its last result."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.out: Any = None

    def __call__(self) -> None:
        self.out = self.call()

    def sync(self) -> None:
        if self.out is not None:
            self.out.block_until_ready()


def _timed(call: Callable[[], Any], p: t.Plan, budget: float) -> dict[str, Any]:
    """Measure ``call`` (which returns a JAX array) with a sync that waits for its last result."""
    last = _Last(call)
    return t.measure(last, last.sync, p, budget)


def _maker(jax: Any, dev: Any) -> Callable[[str, int], _Last]:
    def make(dtype: str, n: int) -> _Last:
        key = jax.random.PRNGKey(0)
        a = jax.device_put(jax.random.normal(key, (n, n), dtype=dtype), dev)
        b = jax.device_put(jax.random.normal(key, (n, n), dtype=dtype), dev)
        mm = jax.jit(lambda x, y: jax.numpy.matmul(x, y, precision=jax.lax.Precision.HIGHEST))
        return _Last(lambda: mm(a, b))

    return make


def _sync_all() -> None:
    """Calls made by ``_maker`` are synced by the caller's ``_Last``; this is for the probes."""


def _matmul(
    sink: t.Sink,
    jax: Any,
    dev: Any,
    label: str,
    p: t.Plan,
    *,
    budget: float,
    limit: int,
    dtype: str,
    metric: str,
    reference: dict[str, float],
    fixed_n: int | None = None,
) -> int | None:
    make = _maker(jax, dev)
    used: dict[str, int] = {}

    def synced(dtype: str, n: int) -> Callable[[], None]:
        last = make(dtype, n)

        def call() -> None:
            last()
            last.sync()

        return call

    def run() -> dict[str, Any]:
        if dtype != "float32":
            t.fast_path(synced, _sync_all, dtype, device=label, p=p, reference=reference)
        if fixed_n is not None:
            n, fn = fixed_n, make(dtype, fixed_n)
        else:
            n, _, _ = t.sized(
                lambda k: synced(dtype, k),
                _sync_all,
                start=p.matmul_start,
                limit=limit,
                target_s=p.target_call_s,
            )
            fn = make(dtype, n)
        used["n"] = n
        return {**t.measure(fn, fn.sync, p, budget), "work": 2.0 * n**3, "size": f"n={n}"}

    sink.result(label, metric, dtype, unit="TFLOPS", work=0.0, size="", run=run)
    return used.get("n")


def _device_figures(
    sink: t.Sink,
    jax: Any,
    dev: Any,
    label: str,
    p: t.Plan,
    *,
    budget: float,
    limit: int,
    elems: int,
    reference: dict[str, float],
) -> int | None:
    """The matmuls, copy and triad of one device; returns the float32 matmul's size."""
    n32 = None
    for dtype in ("float32", "bfloat16", "float16"):
        n = _matmul(
            sink,
            jax,
            dev,
            label,
            p,
            budget=budget,
            limit=limit,
            dtype=dtype,
            metric="matmul",
            reference=reference,
        )
        n32 = n if dtype == "float32" else n32
    arrays: dict[str, Any] = {}

    def setup() -> None:
        if not arrays:
            key = jax.random.PRNGKey(1)
            arrays.update(b=jax.device_put(jax.random.uniform(key, (elems,)), dev))
            arrays.update(c=jax.device_put(jax.random.uniform(key, (elems,)), dev))

    def copy() -> dict[str, Any]:
        setup()
        fn = jax.jit(lambda x: x * 1.0)  # a new output buffer: one read and one write per element
        return _timed(lambda: fn(arrays["b"]), p, budget)

    def triad() -> dict[str, Any]:
        setup()
        fn = jax.jit(lambda x, y: x + 3.0 * y)  # fused by XLA into one pass
        return _timed(lambda: fn(arrays["b"], arrays["c"]), p, budget)

    nbytes = elems * 4
    size = f"{nbytes >> 20} MiB"
    sink.result(label, "copy", None, unit="GB/s", work=2.0 * nbytes, size=size, run=copy)
    sink.result(label, "triad", None, unit="GB/s", work=3.0 * nbytes, size=size, run=triad)
    arrays.clear()
    return n32


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
    on_cpu, on_accel = devices in ("all", "cpu"), devices in ("all", "gpu")
    budget = p.per_figure(5 * on_cpu + 6 * len(accel) * on_accel)
    reference: dict[str, float] = {}
    cpu_n = None
    if on_cpu:
        cpu_n = _device_figures(
            sink, jax, cpu, "cpu", p, budget=budget, limit=p.cpu_matmul_max, elems=p.cpu_stream_elems,
            reference=reference,
        )  # fmt: skip
    if on_accel:
        for row, dev in zip(sink.doc["devices"][1:], accel, strict=True):
            _device_figures(
                sink, jax, dev, row["device"], p, budget=budget, limit=p.gpu_matmul_max,
                elems=p.gpu_stream_elems, reference=reference,
            )  # fmt: skip
            # the CPU's matmul on this device: the speedup compares the very same operation
            _matmul(
                sink, jax, dev, row["device"], p, budget=budget, limit=p.gpu_matmul_max, dtype="float32",
                metric="matmul-cpu-size", reference=reference, fixed_n=cpu_n or p.matmul_start,
            )  # fmt: skip
            for metric in ("h2d", "d2h"):
                why = "JAX has no pinned host buffers and caches host copies: measure with --backend torch"
                sink.result(
                    row["device"], metric, None, unit="GB/s", work=1.0, size="", run=_unavailable(why)
                )


def _unavailable(why: str) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        raise t.Unavailable(why)

    return run
