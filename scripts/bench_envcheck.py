#!/usr/bin/env python3
"""Measure envcheck's speed targets side by side in one run (issue: the envcheck report).

Targets:
  1. default ``envcheck`` (the table; ``--json`` is shown too) <= 1/10 of
     ``python -m torch.utils.collect_env`` (torch installed);
  2. ``envcheck --deep`` (torch and tensorflow installed) <= 1.3x the slower framework's bare import.

Each command runs as a whole process (start-up and exit included), interleaved round by round so
that machine noise hits every command alike; one warm-up round, then ``--runs`` counted rounds;
the median is reported with min-max. Usage: ``python scripts/bench_envcheck.py [--runs 5] [--json]``
with the interpreter of the environment to measure (the one that has torch and tensorflow).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable
ENVCHECK = [PY, "-m", "envcheck"]


def commands(env_has: dict[str, bool], deep: bool) -> dict[str, list[str]]:
    cmds = {"envcheck": [*ENVCHECK], "envcheck --json": [*ENVCHECK, "--json"]}
    if env_has["torch"]:
        cmds["torch collect_env"] = [PY, "-m", "torch.utils.collect_env"]
    if not deep:
        return cmds
    cmds["envcheck --deep"] = [*ENVCHECK, "--deep", "--json"]
    if env_has["torch"]:
        cmds["import torch"] = [PY, "-c", "import torch"]
    if env_has["tensorflow"]:
        cmds["import tensorflow"] = [PY, "-c", "import tensorflow"]
    return cmds


def _installed(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def time_once(argv: list[str]) -> float:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # as on a user's machine: bytecode is cached (pip compiles it at install; the warm-up round
    # writes it for an editable checkout), so do not measure recompiling every module each run
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    took = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # envcheck exits 1 when it finds errors: still a full run
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-deep", action="store_true", help="only the default report against collect_env")
    args = ap.parse_args()
    env_has = {"torch": _installed("torch"), "tensorflow": _installed("tensorflow")}
    cmds = commands(env_has, deep=not args.no_deep)
    samples: dict[str, list[float]] = {name: [] for name in cmds}
    for round_no in range(args.runs + 1):
        for name, argv in cmds.items():
            took = time_once(argv)
            if round_no:  # round 0 warms caches
                samples[name].append(took)
    med = {k: statistics.median(v) for k, v in samples.items()}
    result: dict[str, object] = {
        "python": PY,
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "min_max_s": {k: [round(min(v), 3), round(max(v), 3)] for k, v in samples.items()},
    }
    if "torch collect_env" in med:
        result["default_vs_collect_env"] = round(med["envcheck"] / med["torch collect_env"], 3)
        result["json_vs_collect_env"] = round(med["envcheck --json"] / med["torch collect_env"], 3)
    imports = [med[k] for k in ("import torch", "import tensorflow") if k in med]
    if imports:
        result["deep_vs_slowest_import"] = round(med["envcheck --deep"] / max(imports), 3)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"interpreter: {PY}  ({Path(PY).resolve()})   runs: {args.runs} (+1 warm-up)   cpus: {os.cpu_count()}"
    )
    print(f"{'command':<22}{'median s':>10}{'min':>8}{'max':>8}")
    for k, v in samples.items():
        print(f"{k:<22}{med[k]:>10.3f}{min(v):>8.3f}{max(v):>8.3f}")
    for key, label, target in (
        ("default_vs_collect_env", "envcheck / collect_env", 0.1),
        ("json_vs_collect_env", "envcheck --json / collect_env", 0.1),
        ("deep_vs_slowest_import", "envcheck --deep / slowest import", 1.3),
    ):
        ratio = result.get(key)
        if isinstance(ratio, float):
            verdict = "met" if ratio <= target else "MISSED"
            print(f"{label:<33}= {ratio:.3f}   (target <= {target}: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
