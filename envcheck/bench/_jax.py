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
from dataclasses import dataclass
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


@dataclass
class _Device:
    """One device being measured, and what every figure on it shares."""

    sink: t.Sink
    jax: Any
    dev: Any
    label: str
    p: t.Plan
    budget: float
    limit: int
    #: float32 matmul rate per device (calls/s at the probe size), for the 16-bit fast-path check
    reference: dict[str, float]
    #: the matmul size every machine uses (None: sized by the time budget)
    fixed_n: int | None = None

    def make(self, dtype: str, n: int) -> _Last:
        jax = self.jax
        key = jax.random.PRNGKey(0)
        a = jax.device_put(jax.random.normal(key, (n, n), dtype=dtype), self.dev)
        b = jax.device_put(jax.random.normal(key, (n, n), dtype=dtype), self.dev)
        mm = jax.jit(lambda x, y: jax.numpy.matmul(x, y, precision=jax.lax.Precision.HIGHEST))
        return _Last(lambda: mm(a, b))

    def synced(self, dtype: str, n: int) -> Callable[[], None]:
        """A matmul call that waits for its result (for size search and the fast-path probe)."""
        last = self.make(dtype, n)

        def call() -> None:
            last()
            last.sync()

        return call

    def matmul(self, dtype: str, metric: str = "matmul", fixed_n: int | None = None) -> int | None:
        """Measure one matmul figure; returns the size used (None when skipped or failed)."""
        p = self.p
        used: dict[str, int] = {}

        def run() -> dict[str, Any]:
            if dtype != "float32":
                t.fast_path(self.synced, _nothing, dtype, device=self.label, p=p, reference=self.reference)
            n = fixed_n
            if n is None:
                n, _, _ = t.sized(
                    lambda k: self.synced(dtype, k),
                    _nothing,
                    start=p.matmul_start,
                    limit=self.limit,
                    target_s=p.target_call_s,
                )
            fn = self.make(dtype, n)
            used["n"] = n
            return {**t.measure(fn, fn.sync, p, self.budget), "work": 2.0 * n**3, "size": f"n={n}"}

        self.sink.result(self.label, metric, dtype, unit="TFLOPS", work=0.0, size="", run=run)
        return used.get("n")

    def figures(self, elems: int) -> int | None:
        """The matmuls, copy and triad of this device; returns the float32 matmul's size."""
        sizes = {
            dtype: self.matmul(dtype, fixed_n=self.fixed_n) for dtype in ("float32", "bfloat16", "float16")
        }
        jax, dev, p, budget = self.jax, self.dev, self.p, self.budget
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
        self.sink.result(self.label, "copy", None, unit="GB/s", work=2.0 * nbytes, size=size, run=copy)
        self.sink.result(self.label, "triad", None, unit="GB/s", work=3.0 * nbytes, size=size, run=triad)
        arrays.clear()
        return sizes["float32"]


def _nothing() -> None:
    """The sync of calls that already wait for their result (``_Device.synced``)."""


def main(quick: bool = True, devices: str = "all", fixed: bool = False) -> None:
    """Measure the CPU (unless ``devices == "gpu"``) and every device of JAX's default backend.

    ``fixed``: every matmul at the plan's fixed size, so figures of several machines compare.
    """
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
        cpu_dev = _Device(
            sink,
            jax,
            cpu,
            "cpu",
            p,
            budget,
            p.cpu_matmul_max,
            reference,
            p.matmul_n(False) if fixed else None,
        )
        cpu_n = cpu_dev.figures(p.cpu_stream_elems)
    if on_accel:
        for row, dev in zip(sink.doc["devices"][1:], accel, strict=True):
            device = _Device(
                sink, jax, dev, row["device"], p, budget, p.gpu_matmul_max, reference,
                p.matmul_n(True) if fixed else None,
            )  # fmt: skip
            device.figures(p.gpu_stream_elems)
            # the CPU's matmul on this device: the speedup compares the very same operation
            device.matmul("float32", metric="matmul-cpu-size", fixed_n=cpu_n or p.matmul_start)
            for metric in ("h2d", "d2h"):
                why = "JAX has no pinned host buffers and caches host copies: measure with --backend torch"
                sink.result(
                    row["device"], metric, None, unit="GB/s", work=1.0, size="", run=_unavailable(why)
                )


def _unavailable(why: str) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        raise t.Unavailable(why)

    return run
