#!/usr/bin/env python3
"""Speed target of issue 3: `envcheck smoke` for torch and tensorflow together must take at most
1.3x the slower framework's run alone (frameworks run concurrently in child interpreters).

Measured side by side in one run: each alone, then both together, ``--repeats`` times (median
taken); one unmeasured warm-up pass first so every run starts with a warm file cache.
Usage: python scripts/bench_smoke_concurrency.py [--repeats 2] [--frameworks torch,tensorflow]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from envcheck.smoke.runner import run_smoke

TARGET = 1.3


def timed(frameworks: list[str]) -> float:
    """Wall seconds of one smoke run; exits non-zero if a test failed (the figure would be moot)."""
    start = time.perf_counter()
    report = run_smoke(frameworks)
    seconds = time.perf_counter() - start
    if report.failed:
        bad = [f"{r.framework} {r.device} {r.test}: {r.error}" for r in report.results if r.status == "fail"]
        sys.exit("smoke failed, no figure: " + "; ".join(bad))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--frameworks", default="torch,tensorflow")
    args = parser.parse_args()
    names = [n.strip() for n in args.frameworks.split(",") if n.strip()]
    timed(names)  # warm-up: page cache, .pyc files
    alone: dict[str, list[float]] = {n: [] for n in names}
    together: list[float] = []
    for _ in range(args.repeats):
        for n in names:
            alone[n].append(timed([n]))
        together.append(timed(names))
    med = {n: statistics.median(v) for n, v in alone.items()}
    both = statistics.median(together)
    slowest = max(med.values())
    for n in names:
        print(f"{n:<12} alone    {med[n]:6.2f} s   (runs: {', '.join(f'{v:.2f}' for v in alone[n])})")
    print(f"{'+'.join(names):<12} together {both:6.2f} s   (runs: {', '.join(f'{v:.2f}' for v in together)})")
    ratio = both / slowest
    verdict = "OK" if ratio <= TARGET else "OVER TARGET"
    print(f"together / slower alone = {ratio:.2f}x  (target <= {TARGET}x: {verdict})")
    print(f"sum of alone runs would be {sum(med.values()):.2f} s (sequential)")


if __name__ == "__main__":
    main()
