"""`provision image` through the real console entry point: output, JSON, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from provision.images import lint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"


def provision(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision", "image", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


def test_plan_json() -> None:
    r = provision(
        "plan", "-f", "torch==2.6", "--cuda", "12.4", "--driver", "535.104.05", "--gpu", "H100", "--json"
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["requirement"] == "torch==2.6.*"
    assert data["cuda"] == "12.4"
    assert data["driver_mode"] == "minor-version"
    assert data["gpus"][0]["compute_capability"] == "9.0"
    assert data["labels"]["dev.mlrig.cuda"] == "12.4"
    assert all(f["source"] and f["as_of"] for f in data["facts"])


def test_impossible_combination_is_one_error_and_exit_2() -> None:
    r = provision("plan", "-f", "torch==2.6", "--cuda", "12.8")
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert lines[0] == "error: torch 2.6 has no build for CUDA 12.8 (builds: 11.8, 12.4, 12.6)"
    assert lines[1] == "hint: nearest valid: --cuda 12.6, --cuda 12.4"
    assert "Traceback" not in r.stderr


def test_gpu_refusal_via_cli() -> None:
    r = provision("plan", "-f", "torch==2.11", "--cuda", "12.8", "--gpu", "V100")
    assert r.returncode == 2
    assert "compute capability 7.0" in r.stderr


def test_plan_from_envcheck_report() -> None:
    r = provision(
        "plan", "-f", "torch", "--from-envcheck", str(FIXTURES / "report_a10_driver535.json"), "--json"
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["requirement"], data["python"], data["driver"]) == (
        "torch==2.6.0+cu124",
        "3.10",
        "535.129.03",
    )
    missing = provision("plan", "--from-envcheck", "/nonexistent/report.json")
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_render_writes_a_clean_context(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    r = provision("render", "-o", str(out), "-f", "tensorflow==2.18.0", "--python", "3.11")
    assert r.returncode == 0, r.stderr
    assert "hadolint and structural checks: clean" in r.stderr
    text = (out / "Dockerfile").read_text()
    assert lint.lint(text).ok
    assert '"tensorflow[and-cuda]==2.18.0"' in text


def test_build_without_engine_says_how_to_start_one(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    assert provision("render", "-o", str(out), "-f", "jax", "--cuda", "cpu", "--no-lint").returncode == 0
    r = provision("build", str(out), env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert r.returncode == 3
    assert "no Docker engine answers" in r.stderr and "docker-engine.sh start" in r.stderr
    missing = provision("build", str(tmp_path / "empty"))
    assert missing.returncode == 2 and "no Dockerfile" in missing.stderr
