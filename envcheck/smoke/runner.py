"""Run every framework's smoke program in its own child interpreter, all at once.

Each child is started through ``envcheck._child.run_python`` (own process group, hard timeout),
so a framework that hangs, segfaults or is killed for memory becomes one failing row and the
others finish. The child re-emits all its results after each test, so the rows it completed
before dying are kept; its stderr progress lines name the test that was running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import envcheck
from envcheck._child import ChildResult, run_python
from envcheck.errors import UsageError
from envcheck.smoke._harness import PROGRESS
from envcheck.smoke.models import FrameworkRun, SmokeReport, SmokeResult

#: framework name -> the module holding its child program (``main()``)
PROGRAMS = {
    "torch": "envcheck.smoke._torch",
    "tensorflow": "envcheck.smoke._tensorflow",
    "jax": "envcheck.smoke._jax",
}
ALIASES = {"tf": "tensorflow", "pytorch": "torch", "keras": "tensorflow"}
DEFAULT_TIMEOUT = 180.0

#: quiet TF's C++ logging and stop JAX from reserving 75% of every GPU while others run on it
_CHILD_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def resolve_frameworks(names: Sequence[str] | None) -> list[str]:
    """Canonical framework names from ``--framework`` values (comma lists allowed), in order."""
    if not names:
        return list(PROGRAMS)
    out: list[str] = []
    for raw in names:
        for part in raw.split(","):
            name = part.strip().lower()
            if not name:
                continue
            name = ALIASES.get(name, name)
            if name not in PROGRAMS:
                raise UsageError(
                    f"unknown framework {part.strip()!r}", hint=f"choose from: {', '.join(PROGRAMS)}"
                )
            if name not in out:
                out.append(name)
    if not out:
        raise UsageError("no framework given", hint=f"choose from: {', '.join(PROGRAMS)}")
    return out


#: thread-count variables of OpenMP, MKL, OpenBLAS and TF's own pool
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def child_env(base: Mapping[str, str] | None = None, siblings: int = 1) -> dict[str, str]:
    """The environment of a smoke child: the caller's, plus envcheck importable and quiet logs.

    With ``siblings`` children at once each gets an equal share of the CPUs (unless the user set
    the variable): OpenMP workers spin while waiting, and on 2 cores torch and TF together ran
    slower than one after the other (8.1 s vs 7.8 s) until each had one thread (5.2 s).
    """
    env = dict(os.environ if base is None else base)
    for key, value in _CHILD_ENV.items():
        env.setdefault(key, value)
    share = str(max(1, _usable_cpus() // max(1, siblings)))
    for key in _THREAD_VARS:
        env.setdefault(key, share)
    # appended, not prepended: whatever the user put on PYTHONPATH (even a fake torch) wins
    root = str(Path(envcheck.__file__).resolve().parent.parent)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        env["PYTHONPATH"] = os.pathsep.join([*parts, root])
    return env


def _running(child: ChildResult) -> str | None:
    """The test the child was in when it died, from its last progress line on stderr."""
    for line in reversed(child.stderr_tail):
        if line.startswith(PROGRESS):
            device, _, test = line[len(PROGRESS) :].strip().partition(" ")
            return f"{device} {test}".strip() if device != "-" else test
    return None


def _death_row(framework: str, child: ChildResult, rows: list[SmokeResult]) -> SmokeResult:
    """The failing row of a child that hung, crashed or gave no answer, placed where it died."""
    why = child.error or "no answer"
    where = _running(child)
    device, test = "-", "run"
    if where:
        device, _, test = where.partition(" ") if " " in where else ("-", "", where)
        why = f"{why} while running {where}"
        if any(r.device == device and r.test == test for r in rows):  # died after its last test
            device, test, why = "-", "exit", f"{child.error or 'no answer'} after its last test"
    return SmokeResult(
        framework=framework,
        device=device,
        test=test,
        status="fail",
        seconds=round(child.seconds, 3),
        error=why,
    )


Progress = Callable[[str, "str | None"], None]


def _progress_lines(framework: str, progress: Progress | None) -> Callable[[str], None] | None:
    """The child's "now running <device> <test>" stderr lines -> ``progress(framework, doing)``."""
    if progress is None:
        return None

    def on_line(line: str) -> None:
        if line.startswith(PROGRESS):
            device, _, test = line[len(PROGRESS) :].strip().partition(" ")
            progress(framework, test if device == "-" else f"{device} {test}")

    return on_line


def run_framework(
    framework: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    siblings: int = 1,
    progress: Progress | None = None,
) -> tuple[FrameworkRun, list[SmokeResult]]:
    """Run one framework's program; never raises: a dead child is one more failing row."""
    code = f"from {PROGRAMS[framework]} import main\nmain()\n"
    if progress is not None:
        progress(framework, "starting")
    try:
        child = run_python(
            code,
            timeout=timeout,
            env=child_env(env, siblings),
            on_stderr=_progress_lines(framework, progress),
        )
    finally:
        if progress is not None:
            progress(framework, None)
    value = child.value if isinstance(child.value, dict) else {}
    rows = [SmokeResult(framework=framework, **r) for r in value.get("results", []) if isinstance(r, dict)]
    run = FrameworkRun(
        framework=framework,
        installed=value.get("installed"),
        version=value.get("version"),
        seconds=round(child.seconds, 3),
    )
    if not child.ok or not value:
        row = _death_row(framework, child, rows)
        run.error = row.error
        rows.append(row)
    return run, rows


def _required(run: FrameworkRun, rows: list[SmokeResult]) -> list[SmokeResult]:
    """A framework asked for by name that is not installed fails its import instead of skipping."""
    if run.installed is not False:
        return rows
    why = f"{run.framework} is not installed, but --framework asked for it"
    out = [
        r.model_copy(update={"status": "fail", "error": why})
        if r.test == "import" and r.status == "skip"
        else r
        for r in rows
    ]
    if not any(r.status == "fail" for r in out):
        out.append(SmokeResult(framework=run.framework, device="-", test="import", status="fail", error=why))
    return out


def run_smoke(
    frameworks: Sequence[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> SmokeReport:
    """Smoke-test the frameworks concurrently, each in a child with ``timeout`` seconds.

    Frameworks named in ``frameworks`` must be installed (a missing one fails); by default every
    installed one is tested and the absent ones are skipped.
    """
    names = resolve_frameworks(frameworks)
    named = bool(frameworks)
    if not (0 < timeout < float("inf")):
        raise UsageError(f"timeout must be a positive number of seconds, got {timeout:g}")
    start = time.perf_counter()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="smoke") as pool:
        outcomes = list(pool.map(lambda fw: run_framework(fw, timeout, env, len(names), progress), names))
    runs: list[FrameworkRun] = []
    results: list[SmokeResult] = []
    for run, rows in outcomes:
        runs.append(run)
        results.extend(_required(run, rows) if named else rows)
    return SmokeReport(
        tool_version=envcheck.__version__,
        created_at=created,
        timeout_s=timeout,
        seconds=round(time.perf_counter() - start, 3),
        frameworks=runs,
        results=results,
    )
