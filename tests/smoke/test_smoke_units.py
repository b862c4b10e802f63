"""The pure parts of envcheck smoke: verdict helpers, option parsing, attribution of a dead child."""

from __future__ import annotations

import numpy as np
import pytest

from envcheck._child import ChildResult
from envcheck.errors import UsageError
from envcheck.smoke import _harness as h
from envcheck.smoke.models import SmokeResult
from envcheck.smoke.render import print_report, summary
from envcheck.smoke.runner import _death_row, child_env, resolve_frameworks, run_smoke


def test_loss_must_fall_by_the_stated_factor() -> None:
    assert h.check_loss_fell([1000.0, 500.0, 9.0]).startswith("loss 1e+03 -> 9 (111x")
    with pytest.raises(h.Mismatch, match=r"\(50x, needs 100x\)"):
        h.check_loss_fell([1000.0, 20.0])
    with pytest.raises(h.Mismatch, match="not finite"):
        h.check_loss_fell([1000.0, float("nan")])


def test_close_uses_the_dtype_tolerance() -> None:
    ref = np.ones((4, 4))
    assert h.check_close("float16", ref * (1 + 1e-3), ref).startswith("rel. error 1.0e-03")
    with pytest.raises(h.Mismatch, match="> tolerance 5e-03"):
        h.check_close("float16", ref * 1.01, ref)
    with pytest.raises(h.Mismatch, match="NaN"):
        h.check_close("bfloat16", ref * np.nan, ref)
    with pytest.raises(h.Mismatch, match="shape"):
        h.check_close("float32", np.ones(3), ref)


def test_unsupported_dtype_errors_are_skips_other_errors_are_not() -> None:
    assert h.unsupported(RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'"))
    assert h.unsupported(NotImplementedError())
    assert h.unsupported(Exception("No registered 'MatMul' OpKernel for 'GPU' devices"))
    assert not h.unsupported(RuntimeError("CUDA error: an illegal memory access was encountered"))


def test_last_line_keeps_the_exception_type_and_its_last_line() -> None:
    assert h.last_line(ValueError("first\n\n  the cause  \n")) == "ValueError: the cause"
    assert h.last_line(h.Mismatch("4 + 3 = 8.0, expected 7")) == "4 + 3 = 8.0, expected 7"
    assert h.last_line(KeyError()) == "KeyError"


def test_recorder_turns_exceptions_into_rows_and_reemits_everything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rec = h.Recorder("fake")
    assert rec.run("cpu", "ok", lambda: "fine")
    assert not rec.run("cpu", "wrong", lambda: h.check(False, "got 5, expected 6"))
    assert rec.run("cpu", "skipped", lambda: (_ for _ in ()).throw(h.Skip("no bf16 here")))
    assert not rec.run("cpu", "boom", lambda: str(1 / 0))
    statuses = [(r["test"], r["status"], r["detail"] or r["error"]) for r in rec.results]
    assert statuses == [
        ("ok", "pass", "fine"),
        ("wrong", "fail", "got 5, expected 6"),
        ("skipped", "skip", "no bf16 here"),
        ("boom", "fail", "ZeroDivisionError: division by zero"),
    ]
    out, err = capsys.readouterr()
    assert out.count(h.MARKER) == 4  # one cumulative line after every test
    assert f"{h.PROGRESS} cpu boom" in err


def test_framework_option_accepts_aliases_and_comma_lists() -> None:
    assert resolve_frameworks(None) == ["torch", "tensorflow", "jax"]
    assert resolve_frameworks(["tf,PyTorch", "jax", "torch"]) == ["tensorflow", "torch", "jax"]
    with pytest.raises(UsageError, match="unknown framework 'mxnet'"):
        resolve_frameworks(["mxnet"])
    with pytest.raises(UsageError):
        resolve_frameworks([" , "])
    with pytest.raises(UsageError, match="timeout"):
        run_smoke(["jax"], timeout=0)


def test_child_env_splits_the_cpus_and_keeps_user_settings() -> None:
    env = child_env({"PYTHONPATH": "/fakes", "MKL_NUM_THREADS": "7"}, siblings=1000)
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["MKL_NUM_THREADS"] == "7"
    assert env["PYTHONPATH"].split(":")[0] == "/fakes"  # fakes first, envcheck appended
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_dead_child_row_names_the_running_test() -> None:
    child = ChildResult(
        False, error="crashed: SIGSEGV", seconds=1.0, stderr_tail=[f"{h.PROGRESS} gpu:1 cudnn-conv", "Fatal"]
    )
    row = _death_row("torch", child, [])
    assert (row.device, row.test, row.error) == (
        "gpu:1",
        "cudnn-conv",
        "crashed: SIGSEGV while running gpu:1 cudnn-conv",
    )
    done = [SmokeResult(framework="torch", device="gpu:1", test="cudnn-conv", status="pass")]
    row = _death_row("torch", child, done)
    assert (row.device, row.test, row.error) == ("-", "exit", "crashed: SIGSEGV after its last test")
    row = _death_row("torch", ChildResult(False, error="timed out after 5s"), [])
    assert (row.device, row.test, row.error) == ("-", "run", "timed out after 5s")


def test_table_and_summary() -> None:
    from rich.console import Console

    from envcheck.smoke.models import SmokeReport

    rows = [
        SmokeResult(
            framework="torch", device="cpu", test="autograd", status="fail", seconds=0.01, error="got 7"
        ),
        SmokeResult(
            framework="torch",
            device="gpu:0",
            device_name="NVIDIA L4",
            test="autograd",
            status="pass",
            detail="ok",
        ),
    ]
    report = SmokeReport(tool_version="0", created_at="now", timeout_s=1, seconds=2.0, results=rows)
    console = Console(width=200, record=True)
    print_report(report, console)
    text = console.export_text()
    assert "gpu:0 = NVIDIA L4" in text and "got 7" in text  # device names once, below the table
    assert summary(report) == "1 passed, 1 failed, 0 skipped in 2.0s"
