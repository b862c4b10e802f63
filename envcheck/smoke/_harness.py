"""Child-side harness of ``envcheck smoke``: the shared problem sizes, tolerances and recorder.

Runs inside the child interpreter that imports one framework. Only the standard library is
imported here (numpy is imported by the framework programs, every framework depends on it).
After every test the recorder prints the whole list so far as the marked JSON line, so when the
framework segfaults on test 7 the parent still has tests 1-6; before every test it writes a
progress line on stderr, so a hang can be attributed to the test that was running.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any

from envcheck._child import MARKER

#: the two-layer ReLU network of the classic PyTorch tutorial: batch, input, hidden, output sizes
N, D, H, OUT = 64, 1000, 100, 10
#: plain SGD on the summed squared error, initial weights ~ N(0, 1) as in the tutorial
STEPS = 50
LEARNING_RATE = 1e-6
#: the loss must fall at least this many times in STEPS steps (measured: 1900x-3200x over 6 seeds)
LOSS_FACTOR = 100.0
#: square matmul size of the dtype tests
MATMUL_N = 256
#: the dtypes every framework's matmul test runs in (TF32 has its own test: it is a mode, not a dtype)
DTYPES = ("float32", "float16", "bfloat16")
#: norm-wise relative error allowed against the float32 result (float32 itself: against float64).
#: float16 has an 11-bit significand (unit roundoff 4.9e-4), bfloat16 and TF32 8 and 11 bits
#: (3.9e-3 and 4.9e-4): the bounds are ~10x what a correct 256-long dot product shows.
TOLERANCE = {"float32": 1e-4, "float16": 5e-3, "bfloat16": 3e-2, "tf32": 1e-2}
#: host <-> device round trip payload, in float32 elements (16 MiB)
ROUND_TRIP_ELEMENTS = 4 * 1024 * 1024
#: why TF32 is skipped off NVIDIA GPUs
NO_TF32 = "TF32 exists on NVIDIA GPUs of compute capability 8.0+ only"
#: stderr prefix of the "now running" progress lines the parent reads after a hang
PROGRESS = "@@smoke-running@@"


class Skip(Exception):
    """The test does not apply here (a dtype the device lacks); the message says why."""


class Mismatch(Exception):
    """The framework ran but computed a wrong value; the message gives got vs expected."""


def check(ok: bool, message: str) -> None:
    """Fail the running test with ``message`` unless ``ok``."""
    if not ok:
        raise Mismatch(message)


def rel_error(got: Any, ref: Any) -> float:
    """Norm-wise relative error ||got - ref|| / ||ref|| in float64 (numpy arrays or array-likes)."""
    import numpy as np

    g = np.asarray(got, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if g.shape != r.shape:
        raise Mismatch(f"shape {g.shape} != expected {r.shape}")
    if not np.all(np.isfinite(g)):
        raise Mismatch("result has NaN or Inf")
    return float(np.linalg.norm(g - r) / np.linalg.norm(r))


def check_close(name: str, got: Any, ref: Any) -> str:
    """Compare against the reference with ``TOLERANCE[name]``; return the detail line."""
    err = rel_error(got, ref)
    tol = TOLERANCE[name]
    check(err <= tol, f"relative error {err:.2e} > tolerance {tol:.0e}")
    return f"rel. error {err:.1e} <= {tol:.0e}"


def check_loss_fell(losses: list[float]) -> str:
    """The training test's verdict: finite losses that fell by at least ``LOSS_FACTOR``."""
    check(bool(losses) and all(math.isfinite(v) for v in losses), f"loss not finite: {losses[-3:]}")
    first, last = losses[0], losses[-1]
    factor = first / last if last > 0 else math.inf
    detail = f"loss {first:.3g} -> {last:.3g} ({factor:.0f}x, needs {LOSS_FACTOR:g}x)"
    check(factor >= LOSS_FACTOR, detail)
    return detail


def check_dtype(name: str, d: dict[str, Any], matmul: Callable[[Any], Any], float32: Any, dtypes: Any) -> str:
    """The dtype test's verdict: ``matmul(dtype)`` of ``d``'s operands, float32 against a float64
    NumPy product, a lower precision (``getattr(dtypes, name)``) against float32 on the same device;
    a device that lacks the type skips the test instead of failing it."""
    ref = matmul(float32)
    if name == "float32":
        return check_close(name, ref, d["a"].astype("float64") @ d["b"].astype("float64"))
    try:
        got = matmul(getattr(dtypes, name))
    except Exception as exc:
        if unsupported(exc):
            raise Skip(last_line(exc)) from exc
        raise
    return check_close(name, got, ref)


def data() -> dict[str, Any]:
    """The same seeded inputs for every framework: network data and weights, matmul operands."""
    import numpy as np

    rng = np.random.default_rng(0)
    f32 = np.float32
    return {
        "x": rng.standard_normal((N, D)).astype(f32),
        "y": rng.standard_normal((N, OUT)).astype(f32),
        "w1": rng.standard_normal((D, H)).astype(f32),
        "w2": rng.standard_normal((H, OUT)).astype(f32),
        "a": (rng.standard_normal((MATMUL_N, MATMUL_N)) / np.sqrt(MATMUL_N)).astype(f32),
        "b": rng.standard_normal((MATMUL_N, MATMUL_N)).astype(f32),
        # NHWC image batch and HWIO filters for the convolution test
        "img": rng.standard_normal((8, 32, 32, 16)).astype(f32),
        "filt": (rng.standard_normal((3, 3, 16, 32)) / 12).astype(f32),
    }


def emit(obj: Any) -> None:
    """Print the marked JSON line the parent reads (the last one wins)."""
    sys.stdout.write(MARKER + json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


class Recorder:
    """Runs tests one by one, times them, and re-emits every result so far after each."""

    def __init__(self, framework: str) -> None:
        self.framework = framework
        self.version: str | None = None
        self.installed: bool | None = None
        self.results: list[dict[str, Any]] = []

    def flush(self) -> None:
        emit(
            {
                "framework": self.framework,
                "version": self.version,
                "installed": self.installed,
                "results": self.results,
            }
        )

    def add(
        self,
        device: str,
        test: str,
        status: str,
        seconds: float | None = None,
        *,
        device_name: str | None = None,
        detail: str | None = None,
        error: str | None = None,
    ) -> None:
        self.results.append(
            {
                "device": device,
                "device_name": device_name,
                "test": test,
                "status": status,
                "seconds": None if seconds is None else round(seconds, 4),
                "detail": detail,
                "error": error,
            }
        )
        self.flush()

    def run(
        self, device: str, test: str, func: Callable[[], str | None], device_name: str | None = None
    ) -> bool:
        """Run one test; a Skip is a skip, anything else raised is a fail with its last line."""
        sys.stderr.write(f"{PROGRESS} {device} {test}\n")
        sys.stderr.flush()
        start = time.perf_counter()
        try:
            detail = func()
        except Skip as exc:
            self.add(
                device, test, "skip", time.perf_counter() - start, device_name=device_name, error=str(exc)
            )
            return True
        except Exception as exc:
            self.add(
                device,
                test,
                "fail",
                time.perf_counter() - start,
                device_name=device_name,
                error=last_line(exc),
            )
            return False
        self.add(device, test, "pass", time.perf_counter() - start, device_name=device_name, detail=detail)
        return True

    def import_framework(self, module: str, version: Callable[[Any], str]) -> Any:
        """Import the framework and record it; None when it is absent or its import failed."""
        import importlib

        sys.stderr.write(f"{PROGRESS} - import\n")
        start = time.perf_counter()
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                self.installed = True
                self.add("-", "import", "fail", time.perf_counter() - start, error=last_line(exc))
                return None
            self.installed = False
            self.add("-", "import", "skip", error=f"{module} is not installed")
            return None
        except Exception as exc:  # a broken build: missing libcudnn, ABI mismatch, ...
            self.installed = True
            self.add("-", "import", "fail", time.perf_counter() - start, error=last_line(exc))
            return None
        self.installed = True
        try:
            self.version = version(mod)
        except Exception:  # a framework without a version attribute still gets tested
            self.version = None
        self.add("-", "import", "pass", time.perf_counter() - start, detail=self.version)
        return mod


def last_line(exc: BaseException) -> str:
    """``Type: message`` on one line: the last non-empty line of a (possibly long) error."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[-1] if lines else ""
    name = type(exc).__name__
    if isinstance(exc, Mismatch):
        return text
    return f"{name}: {text}" if text else name


def unsupported(exc: BaseException) -> bool:
    """Whether an error in a dtype test says "this device lacks the type", not "it is broken"."""
    text = str(exc).lower()
    return isinstance(exc, NotImplementedError) or any(
        key in text
        for key in (
            "not implemented",
            "not supported",
            "unsupported",
            "no registered",
            "could not find device for node",
            "no kernel",
        )
    )
