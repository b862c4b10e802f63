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


@dataclass(frozen=True)
class Plan:
    """How hard to measure: ``--quick`` takes a few seconds, the full run a minute or so."""

    warmup: int
    repeats: int
    min_sample_s: float
    cpu_matmul_n: int
    gpu_matmul_n: int
    #: float32 elements per array of the copy/triad bandwidth tests
    cpu_stream_elems: int
    gpu_stream_elems: int
    #: bytes of each host<->device transfer
    transfer_bytes: int


QUICK = Plan(1, 5, 0.05, 1024, 4096, 1 << 24, 1 << 26, 1 << 28)
FULL = Plan(3, 15, 0.2, 2048, 8192, 1 << 27, 1 << 28, 1 << 30)


def plan(quick: bool) -> Plan:
    return QUICK if quick else FULL


def measure(
    fn: Callable[[], Any], sync: Callable[[], Any], p: Plan, *, max_inner: int = 10_000
) -> dict[str, Any]:
    """Per-call seconds of ``fn``: ``p.warmup`` untimed calls, then ``p.repeats`` samples."""
    for _ in range(p.warmup):
        fn()
    sync()
    start = time.perf_counter()
    fn()
    sync()
    one = time.perf_counter() - start
    inner = max(1, min(max_inner, math.ceil(p.min_sample_s / max(one, 1e-9))))
    samples = []
    for _ in range(p.repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        samples.append((time.perf_counter() - start) / inner)
    return {"samples": samples, "inner": inner, "warmup": p.warmup}


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
        sys.stderr.write(f"@@bench-running@@ {device} {metric} {dtype or ''}\n")
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
