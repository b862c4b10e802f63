#!/usr/bin/env python3
"""Time ``envcheck diagnose`` on a 100 KB GitHub issue body (issue: envcheck diagnose reads pastes).

Target: a whole ``envcheck diagnose -`` process (start-up, reading stdin, every recogniser, the
rules, the output, exit) on a 100 KB issue body takes < 0.3 s.

The body is built from the real pastes in tests/fixtures/ingest, the way people write issues: a
title line, prose, a collect_env dump in <details> and a fence, nvidia-smi, a traceback with the
error line, a pip list; repeated with other pastes until it reaches the size. Each output form
(the table, ``--json``, ``--markdown``) runs as a whole process, interleaved round by round; one
warm-up round, then ``--runs`` counted rounds; the median is reported with min-max.
Usage: ``python scripts/bench_diagnose.py [--runs 7] [--size 100000] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "ingest"
TARGET_S = 0.3


def issue_body(size: int) -> bytes:
    """About ``size`` bytes of issue body made of the corpus pastes, each wrapped as people do."""
    pastes = sorted(CORPUS.glob("*.txt"))
    parts = ["### 🐛 Describe the bug\n\nTraining crashes at start-up, see below.\n"]
    n, i = sum(len(p) for p in parts), 0
    while n < size:
        paste = pastes[i % len(pastes)].read_text(encoding="utf-8", errors="replace")
        wrap = i % 3
        if wrap == 0:
            chunk = f"<details><summary>output</summary>\n\n```\n{paste}\n```\n\n</details>\n"
        elif wrap == 1:
            chunk = "".join(f"> {line}\n" for line in paste.splitlines())
        else:
            chunk = f"### Versions\n\n```shell\n$ python -m torch.utils.collect_env\n{paste}\n```\n"
        parts.append(chunk + "\nThanks for any help!\n")
        n += len(parts[-1].encode())
        i += 1
    return "".join(parts).encode()[:size]


def run(args: list[str], body: bytes) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole ``envcheck diagnose -`` process."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte-code cached (the warm-up round writes it)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "envcheck", "diagnose", "-", *args],
        input=body,
        capture_output=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(
            f"envcheck diagnose {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()}"
        )
    return elapsed, (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    opts = parser.parse_args()

    body = issue_body(opts.size)
    forms = {"table": [], "--json": ["--json"], "--markdown": ["--markdown"]}
    wall: dict[str, list[float]] = {name: [] for name in forms}
    cpu: dict[str, list[float]] = {name: [] for name in forms}
    for round_no in range(opts.runs + 1):
        for name, args in forms.items():
            w, c = run(args, body)
            if round_no:  # round 0 warms the file cache and writes the byte-code
                wall[name].append(w)
                cpu[name].append(c)

    result = {
        name: {
            "median_s": statistics.median(wall[name]),
            "min_s": min(wall[name]),
            "max_s": max(wall[name]),
            "cpu_median_s": statistics.median(cpu[name]),
        }
        for name in forms
    }
    worst = max(r["median_s"] for r in result.values())
    load = os.getloadavg()[0]
    if opts.json:
        print(json.dumps({"body_bytes": len(body), "runs": opts.runs, "target_s": TARGET_S, "load_1min": load,
                          "forms": result}))  # fmt: skip
    else:
        print(
            f"envcheck diagnose - on a {len(body) / 1000:.0f} KB issue body, whole process, {opts.runs} runs"
        )
        print(
            f"(load average {load:.1f} on {os.cpu_count()} CPUs: wall time grows with other work, CPU time "
            "less):"
        )
        for name, r in result.items():
            print(
                f"  {name:<11} median {r['median_s']:.3f} s  (min {r['min_s']:.3f}, max {r['max_s']:.3f})"
                f"  CPU {r['cpu_median_s']:.3f} s"
            )
        verdict = "meets" if worst < TARGET_S else "MISSES"
        print(f"slowest median {worst:.3f} s: {verdict} the target of < {TARGET_S} s")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
