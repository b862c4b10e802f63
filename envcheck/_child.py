"""Run Python code in a child interpreter with a timeout and read a JSON answer back.

Frameworks are imported only in children: a framework that hangs, segfaults or runs out of
memory then costs one failed entry, never the whole report. The child prints its answer as
one line ``<MARKER><json>`` on stdout so that library chatter on stdout cannot corrupt it.

No child outlives envcheck. Each runs in its own process group (so a hang is killed with
everything it started) and is registered while it runs: :func:`kill_all`, called by the CLI on
Ctrl-C, SIGTERM, SIGHUP and every other way out, kills every group still running and refuses
new children. For the one way out envcheck cannot act on (SIGKILL, a crash), each child first
forks a watcher into its group that blocks on a pipe only envcheck holds open: when envcheck
is gone the pipe reads end-of-file and the watcher kills the whole group, grandchildren
included. The watcher itself dies with the child it watches (Linux ``PR_SET_PDEATHSIG``), so a
child that ends leaves nothing behind; if no watcher could be forked, the child asks for that
signal itself, to die at least with envcheck.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MARKER = "@@envcheck-json@@"

#: first lines of every child: a watcher that kills the group when envcheck's pipe closes, and
#: death with the parent (Linux); do not start at all if the parent is already gone
_PRELUDE = """\
import os as _os, sys as _sys
_watched = False
if {watch_fd} >= 0:
    try:
        _pid = _os.fork()
    except OSError:
        _pid = -1
    if _pid == 0:
        try:
            for _fd in (0, 1, 2):
                _os.close(_fd)  # hold none of the pipes the parent reads
            if _sys.platform.startswith("linux"):
                try:  # the watcher ends with the child it watches (envcheck kills the rest)
                    import ctypes as _ct
                    _ct.CDLL(None).prctl(1, 9)
                except Exception:
                    pass
            while True:
                try:
                    if not _os.read({watch_fd}, 64):
                        break
                except InterruptedError:
                    continue
            _os.killpg(0, 9)
        finally:
            _os._exit(0)
    _watched = _pid > 0
    _os.close({watch_fd})
if _sys.platform.startswith("linux"):
    if not _watched:
        try:
            import ctypes as _ct
            _ct.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: die with the parent at least
        except Exception:
            pass
    if _os.getppid() != {parent}:
        _os._exit(1)
"""

_live: set[subprocess.Popen[str]] = set()
_live_lock = threading.Lock()
_closing = threading.Event()


def kill_all() -> int:
    """Kill every running child's process group and refuse new children; returns how many."""
    with _live_lock:
        _closing.set()
        procs = list(_live)
    for proc in procs:
        _kill_group(proc)
    return len(procs)


def live_children() -> list[int]:
    """PIDs of the children still registered (for tests and diagnostics)."""
    with _live_lock:
        return [p.pid for p in _live]


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
    """A child started by :func:`spawn_python`; :meth:`wait` collects its answer (once).

    stdout and stderr are read by two threads from the start, so a chatty child never blocks
    on a full pipe and ``on_stderr`` sees each line as it is written (live progress).
    """

    def __init__(
        self,
        proc: subprocess.Popen[str] | None,
        timeout: float,
        failed: str | None = None,
        on_stderr: Callable[[str], None] | None = None,
        watch_fd: int = -1,
    ) -> None:
        self._proc = proc
        #: our end of the watcher's pipe: closing it (or dying) makes the watcher kill the group
        self._watch_fd = watch_fd
        self._timeout = timeout
        self._failed = failed
        self._start = time.perf_counter()
        self._result: ChildResult | None = None
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._readers: list[threading.Thread] = []
        if proc is not None:
            self._readers = [
                threading.Thread(target=self._read_all, args=(proc.stdout,), daemon=True),
                threading.Thread(target=self._read_lines, args=(proc.stderr, on_stderr), daemon=True),
            ]
            for t in self._readers:
                t.start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _read_all(self, stream: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stdout.append(stream.read())

    def _read_lines(self, stream: Any, on_line: Callable[[str], None] | None) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                self._stderr.append(line)
                if on_line is not None:
                    with contextlib.suppress(Exception):  # a display bug must not lose the answer
                        on_line(line.rstrip("\n"))

    def wait(self) -> ChildResult:
        """Block until the child answers, dies or runs out of time (counted from its start)."""
        if self._result is None:
            self._result = self._collect()
        return self._result

    def _drain(self) -> tuple[str, str]:
        # a grandchild in another session may hold the pipes open: do not wait for it forever
        for t in self._readers:
            t.join(2.0)
        return "".join(self._stdout), "".join(self._stderr)

    def _collect(self) -> ChildResult:
        proc = self._proc
        if proc is None:
            return ChildResult(False, error=self._failed)
        remaining = max(0.0, self._timeout - (time.perf_counter() - self._start))
        try:
            try:
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait()
                stdout, stderr = self._drain()
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
        finally:
            # every way out (answer, death, timeout, Ctrl-C, SIGTERM) also ends what the child
            # started: its process group must not outlive it
            _kill_group(proc)
            with _live_lock:
                _live.discard(proc)
            if self._watch_fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._watch_fd)
                self._watch_fd = -1
        stdout, stderr = self._drain()
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
    on_stderr: Callable[[str], None] | None = None,
    stdlib_only: bool = False,
) -> RunningChild:
    """Start ``code`` with ``python -c`` (this interpreter by default) and return at once.

    The child gets its own process group so a hang kills it and everything it started;
    ``on_stderr`` is called with each line the child writes on stderr, as it writes it.
    ``stdlib_only``: the code needs nothing but the standard library, so the child starts
    isolated and without site-packages (``-I -S``: a few ms less, and no .pth file runs).
    """
    flags = ["-I", "-S"] if stdlib_only else []
    watch_r, watch_w = os.pipe() if hasattr(os, "fork") else (-1, -1)
    code = _PRELUDE.format(parent=os.getpid(), watch_fd=watch_r) + code
    argv = [python or sys.executable, *flags, "-c", code, *(args or [])]
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    child_env["PYTHONFAULTHANDLER"] = "1"
    try:
        with _live_lock:
            if _closing.is_set():
                return RunningChild(None, timeout, failed="not started: envcheck is shutting down")
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
                    pass_fds=(watch_r,) if watch_r >= 0 else (),
                )
            except OSError as exc:
                return RunningChild(None, timeout, failed=f"could not start {argv[0]}: {exc.strerror or exc}")
            _live.add(proc)
            started, watch_w = RunningChild(proc, timeout, on_stderr=on_stderr, watch_fd=watch_w), -1
        return started
    finally:
        for fd in (watch_r, watch_w):  # the child's end always; ours too unless the child got going
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


def run_python(
    code: str,
    *,
    timeout: float,
    python: str | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    on_stderr: Callable[[str], None] | None = None,
    stdlib_only: bool = False,
) -> ChildResult:
    """Run ``code`` in a child interpreter and parse its marked JSON line (see :func:`spawn_python`)."""
    return spawn_python(
        code, timeout=timeout, python=python, env=env, args=args, on_stderr=on_stderr, stdlib_only=stdlib_only
    ).wait()


def _parse_marked(stdout: str) -> tuple[Any, bool]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            try:
                return json.loads(line[len(MARKER) :]), True
            except json.JSONDecodeError:
                return None, False
    return None, False


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the child's whole process group (it is the group leader: start_new_session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(OSError):
            proc.kill()


def emit_snippet() -> str:
    """Source of an ``emit(obj)`` function for child snippets: prints the marked JSON line."""
    return (
        "import json as _j, sys as _s\n"
        "def emit(obj):\n"
        f"    _s.stdout.write({MARKER!r} + _j.dumps(obj, default=str) + '\\n'); _s.stdout.flush()\n"
    )
