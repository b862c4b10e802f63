"""envcheck bench for real on this machine's CPU (torch and numpy), the CLI, --plot, a crash."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envcheck.bench.runner import run_bench

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "smoke"


def _need(module: str) -> None:
    """Skip unless ``module`` is installed, without importing it into the test process."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (see scripts/test-frameworks.txt)")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envcheck", "bench", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=300,
        check=False,
    )


@pytest.mark.frameworks
def test_cli_quick_json_and_plot_with_torch(tmp_path: Path) -> None:
    _need("torch")
    png = tmp_path / "bench.png"
    proc = _cli("--quick", "--device", "cpu", "--json", "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["backend"] == "torch" and data["mode"] == "quick"
    figs = {(f["metric"], f["dtype"]): f for f in data["figures"]}
    assert set(figs) == {
        ("matmul", "float32"),
        ("matmul", "bfloat16"),
        ("matmul", "float16"),
        ("copy", None),
        ("triad", None),
    }
    assert data["schema_version"] == "1.0"
    fp32 = figs[("matmul", "float32")]
    assert fp32["median"] > 0 and 3 <= fp32["repeats"] <= 15 and fp32["low"] <= fp32["median"] <= fp32["high"]
    assert fp32["size"].startswith("n=")  # the size the time budget chose
    # the CPU peak comes from the formula and the percentage is measured / peak, never above 100
    assert fp32["peak"] > 0 and "FLOPs/cycle" in fp32["peak_basis"]
    assert fp32["achieved_pct"] == pytest.approx(round(100 * fp32["median"] / fp32["peak"], 1))
    for fig in data["figures"]:
        assert fig["achieved_pct"] is None or fig["achieved_pct"] <= 100.0, fig
    assert figs[("copy", None)]["median"] > 0 and figs[("copy", None)]["peak"] is None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_numpy_backend_measures_the_cpu_without_torch() -> None:
    report = run_bench(quick=True, backend="numpy", devices="cpu")
    assert report.backend == "numpy" and not report.failed
    fp32 = next(f for f in report.figures if f.metric == "matmul" and f.dtype == "float32")
    assert fp32.median is not None and fp32.median > 0
    skipped = {(f.metric, f.dtype): f.skipped for f in report.figures if f.skipped}
    assert skipped == {
        ("matmul", "bfloat16"): "numpy has no bfloat16 BLAS",
        ("matmul", "float16"): "numpy has no float16 BLAS",
        ("triad", None): "numpy has no fused triad",
    }


def test_a_crashing_backend_is_one_error_line_and_exit_3() -> None:
    env = dict(os.environ, PYTHONPATH=str(FIXTURES / "segfault_torch"))
    proc = _cli("--quick", "--backend", "torch", env=env)
    assert proc.returncode == 3
    assert "measured nothing: crashed: SIGSEGV" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_backend_is_a_usage_error() -> None:
    proc = _cli("--backend", "caffe")
    assert proc.returncode == 2 and "unknown backend 'caffe'" in proc.stderr


@pytest.mark.frameworks
def test_gpu_only_bench_without_a_gpu_says_so() -> None:
    _need("torch")
    proc = _cli("--quick", "--device", "gpu", "--backend", "torch")
    assert proc.returncode == 3
    assert "torch sees no GPU" in proc.stderr


@pytest.mark.frameworks
def test_jax_backend_measures_the_cpu() -> None:
    _need("jax")
    report = run_bench(quick=True, backend="jax", devices="cpu")
    assert report.backend == "jax" and not report.failed, report.error
    got = {(f.metric, f.dtype): f for f in report.figures}
    assert set(got) == {
        ("matmul", "float32"),
        ("matmul", "bfloat16"),
        ("matmul", "float16"),
        ("copy", None),
        ("triad", None),
    }
    assert all(f.median and f.median > 0 for f in got.values())
    assert got[("matmul", "float32")].peak is not None


def test_fixed_sizes_measure_the_same_work_on_every_machine() -> None:
    # envcheck cluster compares nodes: the time budget must not pick a different n on a slower one
    from envcheck.bench import _timing as t

    report = run_bench(quick=True, backend="numpy", devices="cpu", fixed_sizes=True)
    fp32 = next(f for f in report.figures if f.metric == "matmul" and f.dtype == "float32")
    assert fp32.size == f"n={t.QUICK.cpu_matmul_fixed}" and fp32.median
