"""envcheck smoke for real: torch, tensorflow (with tf.keras) and jax CPU builds of the test venv.

One concurrent run of all three frameworks (TF's import alone is ~5 s here) shared by the tests.
"""

from __future__ import annotations

import importlib.util

import pytest

from envcheck.smoke.models import SmokeReport
from envcheck.smoke.runner import run_smoke

pytestmark = pytest.mark.frameworks

CPU_TESTS = {
    "arithmetic",
    "autograd",
    "train-2layer",
    "dtype-float32",
    "dtype-float16",
    "dtype-bfloat16",
    "dtype-tf32",
}


@pytest.fixture(scope="module")
def report() -> SmokeReport:
    missing = [m for m in ("torch", "tensorflow", "jax") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"not installed here: {missing} (see scripts/test-frameworks.txt)")
    return run_smoke(timeout=240)


def test_every_cpu_test_passes_for_every_framework(report: SmokeReport) -> None:
    failures = [f"{r.framework} {r.device} {r.test}: {r.error}" for r in report.results if r.status == "fail"]
    assert failures == []
    assert not report.failed
    for fw in ("torch", "tensorflow", "jax"):
        rows = {r.test: r for r in report.results if r.framework == fw and r.device == "cpu"}
        expected = CPU_TESTS | ({"keras-fit"} if fw == "tensorflow" else set())
        assert set(rows) == expected, fw
        # TF32 is the only thing a CPU cannot do; everything else really ran and passed
        assert {t for t, r in rows.items() if r.status == "skip"} == {"dtype-tf32"}
        assert "compute capability 8.0" in (rows["dtype-tf32"].error or "")


def test_results_carry_the_measured_values(report: SmokeReport) -> None:
    for r in report.results:
        if r.device != "cpu" or r.status != "pass":
            continue
        assert r.seconds is not None and r.seconds >= 0
        if r.test == "arithmetic":
            assert r.detail is not None and r.detail.startswith("4 + 3 = 7")
        if r.test == "autograd":
            assert r.detail == "d(x^2)/dx at 3 = 6"
        if r.test in ("train-2layer", "keras-fit"):
            # the same seeded network and data: every framework sees the same loss curve
            assert r.detail is not None and "needs 100x" in r.detail


def test_each_framework_reports_its_import_and_version(report: SmokeReport) -> None:
    runs = {r.framework: r for r in report.frameworks}
    assert set(runs) == {"torch", "tensorflow", "jax"}
    for run in runs.values():
        assert run.installed is True and run.error is None
        assert run.version
    imports = [r for r in report.results if r.test == "import"]
    assert {r.framework for r in imports} == set(runs) and all(r.status == "pass" for r in imports)
