"""Child-side timing of ``envcheck bench``: warm-up, calibrated repeats, raw samples out.

Runs inside the benchmark child; only the standard library. Each sample times ``inner`` calls
(enough for ``min_sample_s`` so timer resolution and launch overhead vanish) between device
synchronisations; the parent turns the per-call seconds into medians and spreads.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envcheck._child import MARKER
from envcheck.smoke._harness import unsupported

#: stderr prefix of the child's "now measuring" lines (live progress in the parent)
PROGRESS = "@@bench-running@@"


@dataclass(frozen=True)
class Plan:
    """How hard to measure: a time budget, not a fixed problem size.

    A matmul's size grows (doubling from ``matmul_start``) until one call takes ``target_call_s``
    or the size cap is reached, so a slow device is measured at a size it finishes and a fast
    one at a size that fills it. Samples are then taken until the figure's budget is spent
    (within ``min_repeats``..``max_repeats``); the budget per figure is ``total_s`` shared by
    all figures of the run, capped at ``figure_s``.
    """

    #: seconds all figures together may spend measuring (the child's import and set-up come on top)
    total_s: float
    #: seconds one figure may spend at most, and at least
    figure_s: float
    min_figure_s: float
    min_repeats: int
    max_repeats: int
    #: each sample runs the operation back to back for at least this long (timer resolution)
    min_sample_s: float
    #: matmul sizes: the first tried, the largest on a CPU and on an accelerator
    matmul_start: int
    cpu_matmul_max: int
    gpu_matmul_max: int
    #: a matmul size is big enough when one call takes this long
    target_call_s: float
    #: the sizes every machine uses when figures must compare across machines (``fixed``)
    cpu_matmul_fixed: int
    gpu_matmul_fixed: int
    #: float32 elements per array of the copy/triad bandwidth tests
    cpu_stream_elems: int
    gpu_stream_elems: int
    #: bytes of each host<->device transfer
    transfer_bytes: int
    #: a 16-bit matmul slower than this fraction of float32 has no fast path on the device
    slow_fraction: float = 0.25

    def matmul_n(self, accelerator: bool) -> int:
        """The fixed matmul size of a device kind (``fixed`` runs: the same work on every machine)."""
        return self.gpu_matmul_fixed if accelerator else self.cpu_matmul_fixed

    def per_figure(self, figures: int) -> float:
        """Seconds of sampling for each of ``figures`` figures."""
        return max(self.min_figure_s, min(self.figure_s, self.total_s / max(1, figures)))


QUICK = Plan(
    total_s=3.0,
    figure_s=0.5,
    min_figure_s=0.15,
    min_repeats=3,
    max_repeats=15,
    min_sample_s=0.02,
    matmul_start=256,
    cpu_matmul_max=2048,
    gpu_matmul_max=8192,
    target_call_s=0.005,
    cpu_matmul_fixed=1024,
    gpu_matmul_fixed=4096,
    cpu_stream_elems=1 << 24,
    gpu_stream_elems=1 << 26,
    transfer_bytes=1 << 28,
)
FULL = Plan(
    total_s=60.0,
    figure_s=4.0,
    min_figure_s=1.0,
    min_repeats=5,
    max_repeats=50,
    min_sample_s=0.1,
    matmul_start=256,
    cpu_matmul_max=8192,
    gpu_matmul_max=16384,
    target_call_s=0.1,
    cpu_matmul_fixed=2048,
    gpu_matmul_fixed=8192,
    cpu_stream_elems=1 << 26,
    gpu_stream_elems=1 << 28,
    transfer_bytes=1 << 30,
)


def plan(quick: bool) -> Plan:
    return QUICK if quick else FULL


def _one_call(fn: Callable[[], Any], sync: Callable[[], Any]) -> float:
    fn()
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def sized(
    make: Callable[[int], Callable[[], Any]],
    sync: Callable[[], Any],
    *,
    start: int,
    limit: int,
    target_s: float,
) -> tuple[int, Callable[[], Any], float]:
    """The size whose call takes ``target_s`` (doubling from ``start``, at most ``limit``).

    Returns (size, the call at that size, seconds of one call). ``make(n)`` builds the operands
    and returns the call; a size that fails to build (out of memory) stops the growth.
    """
    n = start
    fn = make(n)
    one = _one_call(fn, sync)
    while one < target_s and n * 2 <= limit:
        try:
            bigger = make(n * 2)
            took = _one_call(bigger, sync)
        except Exception as exc:
            if "out of memory" in str(exc).lower() or isinstance(exc, MemoryError):
                break
            raise
        n, fn, one = n * 2, bigger, took
    return n, fn, one


def rate(fn: Callable[[], Any], sync: Callable[[], Any], *, min_s: float = 0.02) -> float:
    """Calls per second of ``fn`` over at least ``min_s`` (a quick probe, not a figure)."""
    one = _one_call(fn, sync)
    calls = max(1, math.ceil(min_s / max(one, 1e-9)))
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return calls / max(time.perf_counter() - start, 1e-9)


def measure(
    fn: Callable[[], Any], sync: Callable[[], Any], p: Plan, budget_s: float, *, max_inner: int = 10_000
) -> dict[str, Any]:
    """Per-call seconds of ``fn``: one untimed call, then samples until ``budget_s`` is spent."""
    one = _one_call(fn, sync)
    inner = max(1, min(max_inner, math.ceil(p.min_sample_s / max(one, 1e-9))))
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < p.max_repeats and (len(samples) < p.min_repeats or time.perf_counter() < deadline):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        samples.append((time.perf_counter() - start) / inner)
    return {"samples": samples, "inner": inner, "warmup": 1}


def fast_path(
    make: Callable[[str, int], Callable[[], Any]],
    sync: Callable[[], Any],
    dtype: str,
    *,
    device: str,
    p: Plan,
    reference: dict[str, float],
) -> None:
    """Raise :class:`Unavailable` when ``dtype`` matmuls run far slower than float32 here.

    A device without a 16-bit path (a CPU without AVX512_FP16 or AMX: half precision emulated
    element by element) would take minutes for a figure that says nothing about its peak.
    ``reference`` caches the float32 rate per device.
    """
    n = p.matmul_start
    if device not in reference:
        reference[device] = rate(make("float32", n), sync)
    mine = rate(make(dtype, n), sync)
    if mine < p.slow_fraction * reference[device]:
        flops = 2.0 * n**3 / 1e9
        kind = device.partition(":")[0]
        raise Unavailable(
            f"no fast {dtype} matmul on this {kind}: {mine * flops:.3g} GFLOP/s against "
            f"{reference[device] * flops:.3g} float32 at n={n}"
        )


class Unavailable(Exception):
    """A figure this backend or device cannot measure: a skip with this reason, not an error."""


class Sink:
    """Collects results and re-emits all of them after each, so a crash keeps what was measured."""

    def __init__(self, backend: str) -> None:
        self.doc: dict[str, Any] = {
            "backend": backend,
            "version": None,
            "threads": None,
            "devices": [],
            "results": [],
        }

    def emit(self) -> None:
        sys.stdout.write(MARKER + json.dumps(self.doc, default=str) + "\n")
        sys.stdout.flush()

    def result(
        self,
        device: str,
        metric: str,
        dtype: str | None,
        *,
        unit: str,
        work: float,
        size: str,
        run: Callable[[], dict[str, Any]],
    ) -> None:
        """Measure one figure; an exception becomes that figure's error (or skip), never raised."""
        sys.stderr.write(f"{PROGRESS} {device} {metric} {dtype or ''}\n")
        sys.stderr.flush()
        row: dict[str, Any] = {
            "device": device,
            "metric": metric,
            "dtype": dtype,
            "unit": unit,
            "work": work,
            "size": size,
        }
        try:
            row.update(run())
        except Unavailable as exc:
            row["skipped"] = str(exc)
        except Exception as exc:
            if unsupported(exc):
                row["skipped"] = _last(exc)
            else:
                row["error"] = _last(exc)
        self.doc["results"].append(row)
        self.emit()


def _last(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__
