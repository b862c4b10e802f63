#!/usr/bin/env python3
"""Can envcheck bench's CPU matmul figure be trusted? Compare it with an independent timing.

Two parts, one run:
  1. ``envcheck bench --quick --device cpu`` as a user runs it: its float32 matmul figure.
  2. Side by side in one child interpreter, alternating ``--rounds`` times so that load from
     other processes hits both alike: envcheck bench's own measuring code (the very function
     the bench child runs: warm-up, calibrated repeats, median) and torch.utils.benchmark's
     blocked_autorange timing the same operation (torch.mm, n x n float32, same threads).
     Target: the two medians agree within 10%.
numpy's matmul timed with timeit is printed for reference (a different BLAS: OpenBLAS, not
MKL). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when set on this machine, only affect numpy: it is
then timed as configured and with both variables removed for that child alone.
Usage: python scripts/bench_matmul_crosscheck.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Any

from envcheck._child import emit_snippet, run_python
from envcheck.bench.runner import rate_stats, run_bench

SIDE_BY_SIDE = (
    emit_snippet()
    + """
import torch, torch.utils.benchmark as tb
from envcheck.bench import _timing as t, _torch as bt

n, rounds = {n}, {rounds}
ours, theirs = [], []
a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
timer = tb.Timer("torch.mm(a, b, out=c)", globals={{"torch": torch, "a": a, "b": b, "c": c}},
                 num_threads=torch.get_num_threads())
sink = t.Sink("torch")
for _ in range(rounds):
    bt._matmul(sink, torch, "cpu", n=n, dtype="float32", p=t.plan(True))
    ours.append(sink.doc["results"][-1]["samples"])
    theirs.append(timer.blocked_autorange(min_run_time=0.3).median)
emit({{"ours": ours, "theirs": theirs, "threads": torch.get_num_threads()}})
"""
)

NUMPY_TIMEIT = (
    emit_snippet()
    + """
import statistics, timeit
import numpy as np
n = {n}
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
out = np.empty((n, n), dtype=np.float32)
f = lambda: np.matmul(a, b, out=out)
f()
number, _ = timeit.Timer(f).autorange()
runs = timeit.repeat(f, number=number, repeat=5)
blas = np.show_config(mode="dicts").get("Build Dependencies", {{}}).get("blas", {{}})
emit({{"seconds": statistics.median(runs) / number, "blas": f"{{blas.get('name')}} {{blas.get('version')}}"}})
"""
)


def gflops(n: int, seconds: float) -> float:
    return 2.0 * n**3 / seconds / 1e9


def child(code: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    res = run_python(code, timeout=600, env=env)
    if not res.ok:
        sys.exit(f"measurement failed: {res.error}")
    value: dict[str, Any] = res.value
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    report = run_bench(quick=True, devices="cpu", backend="torch")
    fig = next(f for f in report.figures if f.metric == "matmul" and f.dtype == "float32")
    if fig.median is None:
        sys.exit(f"envcheck bench measured no float32 matmul: {fig.error or report.error}")
    n = int((fig.size or "n=0").split("=")[1])

    side = child(SIDE_BY_SIDE.format(n=n, rounds=args.rounds))
    ours = [rate_stats(s, 2.0 * n**3, 1e9)[0] for s in side["ours"]]  # the bench's own statistics
    theirs = [gflops(n, s) for s in side["theirs"]]
    a, b = statistics.median(ours), statistics.median(theirs)
    diff = 100.0 * (a - b) / b
    paired = [100.0 * (x - y) / y for x, y in zip(ours, theirs, strict=True)]

    blas_vars = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    np_set = child(NUMPY_TIMEIT.format(n=n))
    np_unset = None
    if blas_vars:
        env = {k: v for k, v in os.environ.items() if k not in blas_vars}
        np_unset = child(NUMPY_TIMEIT.format(n=n), env)

    print(f"float32 matmul, n={n}, {side['threads']} threads")
    whole = f"{fig.median * 1000:7.1f} GFLOP/s ({fig.achieved_pct}% of peak)"
    print(f"  envcheck bench --quick --device cpu:  {whole}")
    print(f"  side by side, {args.rounds} alternating rounds (median):")
    print(f"    envcheck bench's measuring code:    {a:7.1f} GFLOP/s")
    print(f"    torch.utils.benchmark, same op:     {b:7.1f} GFLOP/s")
    verdict = "OK" if abs(diff) <= 10 else "DISAGREE"
    print(f"    difference: {diff:+.1f}%  (target within 10%: {verdict})")
    print(f"    per-round differences: {', '.join(f'{d:+.0f}%' for d in paired)}")
    label = ", ".join(f"{k}={v}" for k, v in blas_vars.items()) or "OPENBLAS_CORETYPE not set"
    print(f"  numpy timeit ({np_set['blas']}; {label}):")
    print(f"                                        {gflops(n, np_set['seconds']):7.1f} GFLOP/s (other BLAS)")
    if np_unset:
        print(f"  numpy timeit, those variables unset:  {gflops(n, np_unset['seconds']):7.1f} GFLOP/s")
    print(f"CPU peak: {report.cpu_peak}")
    for note in report.notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
