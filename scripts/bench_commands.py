#!/usr/bin/env python3
"""Wall time of envcheck's long commands next to their targets (issue: careful user).

Targets on the development machine (2 cores, no GPU): ``envcheck bench --quick`` <= 10 s,
``envcheck bench`` (full) <= 120 s; ``envcheck smoke`` and ``envcheck --deep`` are printed for
the record. Each command runs as a whole process with its output discarded (piped, so no live
progress), ``--runs`` times; the median is reported with min-max, plus what each bench figure
measured (size, median, % of peak) from the last run's JSON so a timing can be read against the
work it did. Usage: ``python scripts/bench_commands.py [--runs 1] [--skip-full] [--json]`` with
the interpreter of the environment to measure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PY = sys.executable
COMMANDS: dict[str, tuple[list[str], float | None]] = {
    "envcheck smoke": (["smoke", "--json"], None),
    "envcheck bench --quick": (["bench", "--quick", "--json"], 10.0),
    "envcheck bench": (["bench", "--json"], 120.0),
    "envcheck --deep": (["--deep", "--json"], None),
}


def run_once(args: list[str]) -> tuple[float, int, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    proc = subprocess.run(
        [PY, "-m", "envcheck", *args], capture_output=True, text=True, env=env, timeout=1800, check=False
    )
    return time.perf_counter() - start, proc.returncode, proc.stdout


def _figures(stdout: str) -> list[str]:
    try:
        data = json.loads(stdout)
    except ValueError:
        return []
    rows = []
    for f in data.get("figures", []):
        what = f"{f['device']} {f['metric']} {f.get('dtype') or ''}".strip()
        if f.get("skipped") or f.get("error"):
            rows.append(f"    {what}: {f.get('skipped') or f.get('error')}")
            continue
        pct = f" ({f['achieved_pct']:.0f}% of peak)" if f.get("achieved_pct") is not None else ""
        rows.append(
            f"    {what} {f.get('size') or ''}: {f['median']:.4g} {f['unit']}{pct}, {f['repeats']} samples"
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--skip-full", action="store_true", help="leave out the full bench (about a minute)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    todo = {k: v for k, v in COMMANDS.items() if not (args.skip_full and k == "envcheck bench")}
    samples: dict[str, list[float]] = {k: [] for k in todo}
    codes: dict[str, int] = {}
    last: dict[str, str] = {}
    for _ in range(args.runs):
        for name, (argv, _target) in todo.items():
            took, code, stdout = run_once(argv)
            samples[name].append(took)
            codes[name], last[name] = code, stdout
    result = {
        name: {
            "median_s": round(statistics.median(v), 2),
            "min_max_s": [round(min(v), 2), round(max(v), 2)],
            "exit_code": codes[name],
            "target_s": todo[name][1],
        }
        for name, v in samples.items()
    }
    if args.json:
        print(
            json.dumps(
                {"python": PY, "cpus": os.cpu_count(), "runs": args.runs, "commands": result}, indent=2
            )
        )
        return 0
    print(f"interpreter: {PY}   runs: {args.runs}   cpus: {os.cpu_count()}")
    print(f"{'command':<26}{'median s':>10}{'min':>8}{'max':>8}{'exit':>6}   target")
    for name, r in result.items():
        target = r["target_s"]
        verdict = (
            "" if target is None else f"<= {target:g} s: {'met' if r['median_s'] <= target else 'MISSED'}"
        )
        lo, hi = r["min_max_s"]
        print(f"{name:<26}{r['median_s']:>10.2f}{lo:>8.2f}{hi:>8.2f}{r['exit_code']:>6}   {verdict}")
        if name.startswith("envcheck bench"):
            print("\n".join(_figures(last[name])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
