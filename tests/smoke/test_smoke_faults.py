"""Fake frameworks on PYTHONPATH (tests/fixtures/smoke/) that crash, hang, are killed or lie.

A framework that hangs, segfaults or dies must be one failing row with its reason while the
others finish; a framework that computes a wrong gradient must fail the autograd test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envcheck.smoke.models import SmokeReport, SmokeResult
from envcheck.smoke.runner import run_smoke

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "smoke"


def _need(module: str) -> None:
    """Skip unless ``module`` is installed, without importing it into the test process."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (see scripts/test-frameworks.txt)")


def _env(*fakes: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(FIXTURES / f) for f in fakes)
    return env


def _rows(report: SmokeReport, framework: str) -> list[SmokeResult]:
    return [r for r in report.results if r.framework == framework]


def _only_fail(report: SmokeReport, framework: str) -> SmokeResult:
    rows = _rows(report, framework)
    assert len(rows) == 1, rows
    assert rows[0].status == "fail"
    return rows[0]


@pytest.mark.frameworks
def test_crash_and_hang_fail_with_reasons_while_the_real_torch_finishes() -> None:
    _need("torch")
    report = run_smoke(timeout=15, env=_env("segfault", "hang"))
    tf = _only_fail(report, "tensorflow")
    assert tf.test == "import"
    assert tf.error == "crashed: SIGSEGV while running import"
    jax = _only_fail(report, "jax")
    assert jax.test == "import"
    assert jax.error == "timed out after 15s while running import"
    # the real torch still ran every test to the end
    torch = {r.test: r.status for r in _rows(report, "torch") if r.device == "cpu"}
    assert torch["train-2layer"] == "pass" and torch["dtype-bfloat16"] == "pass"
    assert report.failed
    runs = {r.framework: r for r in report.frameworks}
    assert runs["torch"].error is None
    assert runs["tensorflow"].error == tf.error


def test_killed_child_is_reported_as_probable_out_of_memory() -> None:
    report = run_smoke(["jax"], timeout=30, env=_env("oom"))
    row = _only_fail(report, "jax")
    assert row.error == "killed by SIGKILL (out of memory?) while running import"


@pytest.mark.frameworks
def test_wrong_autograd_value_fails_and_the_rest_still_passes() -> None:
    _need("torch")
    report = run_smoke(["torch"], timeout=120, env=_env("wrong_grad"))
    rows = {r.test: r for r in _rows(report, "torch") if r.device == "cpu"}
    assert rows["autograd"].status == "fail"
    assert rows["autograd"].error == "d(x^2)/dx at 3 = 7.0, expected 6"
    assert rows["arithmetic"].status == "pass"
    assert rows["train-2layer"].status == "pass"  # trained through backward(), not autograd.grad
    assert report.failed


@pytest.mark.frameworks
def test_crash_in_the_middle_keeps_the_rows_before_it() -> None:
    _need("torch")
    report = run_smoke(["torch"], timeout=120, env=_env("crash_mid"))
    rows = [(r.device, r.test, r.status) for r in _rows(report, "torch")]
    assert rows[:3] == [("-", "import", "pass"), ("cpu", "arithmetic", "pass"), ("cpu", "autograd", "pass")]
    assert rows[3] == ("cpu", "train-2layer", "fail")
    assert len(rows) == 4
    assert _rows(report, "torch")[3].error == "crashed: SIGSEGV while running cpu train-2layer"


@pytest.mark.frameworks
def test_hang_in_the_middle_keeps_the_rows_before_it() -> None:
    _need("torch")
    report = run_smoke(["torch"], timeout=15, env=_env("hang_mid"))
    rows = [(r.device, r.test, r.status) for r in _rows(report, "torch")]
    assert rows == [
        ("-", "import", "pass"),
        ("cpu", "arithmetic", "pass"),
        ("cpu", "autograd", "pass"),
        ("cpu", "train-2layer", "fail"),
    ]
    assert _rows(report, "torch")[3].error == "timed out after 15s while running cpu train-2layer"


def test_import_error_fails_and_a_framework_asked_for_but_absent_fails_too() -> None:
    broken = _only_fail(run_smoke(["jax"], timeout=30, env=_env("broken_import")), "jax")
    assert broken.test == "import"
    assert (
        broken.error
        == "ImportError: libcudnn.so.9: cannot open shared object file: No such file or directory"
    )
    absent = run_smoke(["jax"], timeout=30, env=_env("not_installed"))
    (row,) = absent.results
    assert (row.test, row.status) == ("import", "fail")
    assert row.error == "jax is not installed, but --framework asked for it"
    assert absent.failed
    assert absent.frameworks[0].installed is False


def test_by_default_an_absent_framework_is_a_skip() -> None:
    report = run_smoke(timeout=30, env=_env("not_installed"))
    assert {(r.framework, r.test, r.status) for r in report.results} == {
        (fw, "import", "skip") for fw in ("torch", "tensorflow", "jax")
    }
    assert not report.failed


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envcheck", "smoke", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_json_and_exit_code_1_on_failure() -> None:
    proc = _cli("--framework", "jax", "--json", "--timeout", "30", env=_env("segfault", "broken_import"))
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert [(r["framework"], r["test"], r["status"]) for r in data["results"]] == [("jax", "import", "fail")]
    assert "1 failed" in proc.stderr


def test_cli_smoke_of_a_named_framework_that_is_missing_exits_1() -> None:
    proc = _cli("-f", "jax", env=_env("not_installed"))
    assert proc.returncode == 1, proc.stderr
    assert "jax is not installed" in proc.stdout
    assert "0 passed, 1 failed, 0 skipped" in proc.stderr


def test_cli_smoke_with_no_framework_at_all_could_not_run() -> None:
    proc = _cli(env=_env("not_installed"))
    assert proc.returncode == 3, proc.stderr
    assert "nothing to smoke-test" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_unknown_framework_is_a_usage_error() -> None:
    proc = _cli("--framework", "caffe", env=dict(os.environ))
    assert proc.returncode == 2
    assert "unknown framework 'caffe'" in proc.stderr
    assert "Traceback" not in proc.stderr
