"""Run Python code in a child interpreter with a timeout and read a JSON answer back.

Frameworks are imported only in children: a framework that hangs, segfaults or runs out of
memory then costs one failed entry, never the whole report. The child prints its answer as
one line ``<MARKER><json>`` on stdout so that library chatter on stdout cannot corrupt it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

MARKER = "@@envcheck-json@@"


@dataclass
class ChildResult:
    ok: bool
    value: Any = None
    #: one line saying what went wrong: "timed out after 60s", "crashed: SIGSEGV", the exception's last line
    error: str | None = None
    seconds: float = 0.0
    returncode: int | None = None
    stderr_tail: list[str] = field(default_factory=list)
    pid: int | None = None


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _describe_death(returncode: int) -> str:
    sig = -returncode
    what = _signal_name(sig)
    if sig == signal.SIGKILL:
        return f"killed by {what} (out of memory?)"
    return f"crashed: {what}"


def _last_error_line(stderr: str) -> str | None:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else None


class RunningChild:
    """A child started by :func:`spawn_python`; :meth:`wait` collects its answer (once)."""

    def __init__(self, proc: subprocess.Popen[str] | None, timeout: float, failed: str | None = None) -> None:
        self._proc = proc
        self._timeout = timeout
        self._failed = failed
        self._start = time.perf_counter()
        self._result: ChildResult | None = None

    def wait(self) -> ChildResult:
        """Block until the child answers, dies or runs out of time (counted from its start)."""
        if self._result is None:
            self._result = self._collect()
        return self._result

    def _collect(self) -> ChildResult:
        proc = self._proc
        if proc is None:
            return ChildResult(False, error=self._failed)
        remaining = max(0.0, self._timeout - (time.perf_counter() - self._start))
        try:
            stdout, stderr = proc.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            partial, _ = _parse_marked(stdout)  # what the child said before it hung (its last stage)
            return ChildResult(
                False,
                partial,
                error=f"timed out after {self._timeout:g}s",
                seconds=time.perf_counter() - self._start,
                returncode=None,
                stderr_tail=stderr.splitlines()[-20:],
                pid=proc.pid,
            )
        seconds = time.perf_counter() - self._start
        tail = stderr.splitlines()[-20:]
        value, found = _parse_marked(stdout)
        if proc.returncode < 0:
            return ChildResult(
                False, value, _describe_death(proc.returncode), seconds, proc.returncode, tail, proc.pid
            )
        if not found:
            why = _last_error_line(stderr) or f"exited with code {proc.returncode} and no answer"
            return ChildResult(False, None, why, seconds, proc.returncode, tail, proc.pid)
        if proc.returncode != 0:  # it answered, then failed: keep what it said, report the failure
            why = _last_error_line(stderr) or f"exited with code {proc.returncode}"
            return ChildResult(False, value, why, seconds, proc.returncode, tail, proc.pid)
        return ChildResult(True, value, None, seconds, proc.returncode, tail, proc.pid)


def spawn_python(
    code: str,
    *,
    timeout: float,
    python: str | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> RunningChild:
    """Start ``code`` with ``python -c`` (this interpreter by default) and return at once.

    The child gets its own process group so a hang kills it and everything it started.
    """
    argv = [python or sys.executable, "-c", code, *(args or [])]
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    child_env["PYTHONFAULTHANDLER"] = "1"
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=child_env,
            start_new_session=True,
        )
    except OSError as exc:
        return RunningChild(None, timeout, failed=f"could not start {argv[0]}: {exc.strerror or exc}")
    return RunningChild(proc, timeout)


def run_python(
    code: str,
    *,
    timeout: float,
    python: str | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> ChildResult:
    """Run ``code`` in a child interpreter and parse its marked JSON line (see :func:`spawn_python`)."""
    return spawn_python(code, timeout=timeout, python=python, env=env, args=args).wait()


def _parse_marked(stdout: str) -> tuple[Any, bool]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            try:
                return json.loads(line[len(MARKER) :]), True
            except json.JSONDecodeError:
                return None, False
    return None, False


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def emit_snippet() -> str:
    """Source of an ``emit(obj)`` function for child snippets: prints the marked JSON line."""
    return (
        "import json as _j, sys as _s\n"
        "def emit(obj):\n"
        f"    _s.stdout.write({MARKER!r} + _j.dumps(obj, default=str) + '\\n'); _s.stdout.flush()\n"
    )
