"""Helpers shared by the cluster tests (loaded by conftest as ``cluster_helpers``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "cluster"


sim = sys.modules["mlrig_cluster_sim"]  # conftest loads tests/fixtures/cluster/sim.py first

#: fault nodes used by every engine's suite, by kind
SSH_NODES = [
    ("node-1", "ok"),
    ("node-2", "ok"),
    ("node-3", "old-torch"),
    ("node-4", "slow"),
    ("node-5", "hang"),
    ("node-6", "crash"),
    ("node-7", "unreachable"),
]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, prefix: list[str] | None = None
) -> tuple[int, Any, str]:
    """``envcheck ARGS`` in a child with the code under test first on the path: (exit code, JSON or text,
    stderr). ``prefix`` runs it under another command (salloc)."""
    proc = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "envcheck", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80", **(env or {})},
        check=False,
    )
    try:
        out: Any = json.loads(proc.stdout)
    except ValueError:
        out = proc.stdout
    return proc.returncode, out, proc.stderr


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in report["nodes"]}


def findings(report: dict[str, Any], fid: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["id"] == fid]
