#!/usr/bin/env python3
"""Wall time of the offline pricing commands, end to end from the shell (target for `gpus`: < 0.3 s).

Runs each command several times as a subprocess (the installed ``provision`` console script when on
PATH, else ``python -m provision``), output discarded, and prints median and min wall seconds and the
median CPU seconds (user + system) of the child: on a busy machine wall time includes waiting for a
core, CPU time is what the command itself costs.
Usage: python scripts/bench_pricing.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS: list[list[str]] = [
    ["--help"],
    ["gpus"],
    ["gpus", "A100", "--json"],
    ["gpus", "H100", "--all-regions"],
    ["gpus", "--all", "--min-memory", "80", "--max-gpu-price", "4"],
    ["cost", "--gpu", "A100:8", "--hours", "72"],
    ["cost", "--params", "7e9", "--tokens", "2e12"],
    ["cost", "--flops", "3.1e21", "--mfu", "0.4", "--json"],
    ["rig", "--gpu", "RTX 4090:2", "--kwh-price", "0.16", "--utilization", "0.3"],
    ["rig", "--gpu", "RTX 4090:4"],
    ["rig", "--budget", "6000", "--optimize", "memory"],
    ["catalog"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    exe = shutil.which("provision")
    base = [exe] if exe else [sys.executable, "-m", "provision"]
    env = {**os.environ, "COLUMNS": "160"}
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{'command':<70} {'median s':>9} {'min s':>7} {'cpu s':>7}  "
        f"(runs={args.runs}, load avg {load}, {' '.join(base)})"
    )
    for cmd in COMMANDS:
        times, cpu = [], []
        for _ in range(args.runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run(
                [*base, *cmd],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                timeout=60,
                check=False,
            )
            times.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if proc.returncode != 0:
                print(
                    f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.decode().strip()}",
                    file=sys.stderr,
                )
                return 1
        label = "provision " + " ".join(cmd)
        wall, least, used = statistics.median(times), min(times), statistics.median(cpu)
        print(f"{label:<70} {wall:>9.3f} {least:>7.3f} {used:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
