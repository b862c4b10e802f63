"""Run probes concurrently, each with a deadline; a probe that raises or hangs becomes data.

Daemon threads rather than a ThreadPoolExecutor: an executor joins its workers at exit, so
one wedged NVML call would hang the whole report. A daemon thread that never returns is
simply abandoned when the report is done.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Outcome:
    name: str
    value: Any = None
    #: "ok", "failed" or "timeout"
    status: str = "ok"
    error: str | None = None
    seconds: float = 0.0


class _Job(threading.Thread):
    def __init__(self, name: str, func: Callable[[], Any]) -> None:
        super().__init__(name=f"probe-{name}", daemon=True)
        self.probe = name
        self.func = func
        self.outcome = Outcome(name, status="timeout")
        self.started_at = 0.0

    def run(self) -> None:
        self.started_at = time.perf_counter()
        try:
            value = self.func()
        except Exception as exc:  # a probe bug or a broken machine: report it, keep going
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
            self.outcome = Outcome(
                self.probe,
                status="failed",
                error=f"{type(exc).__name__}: {exc}{where}",
                seconds=time.perf_counter() - self.started_at,
            )
            return
        self.outcome = Outcome(self.probe, value=value, seconds=time.perf_counter() - self.started_at)


def run_all(jobs: dict[str, Callable[[], Any]], timeout: float) -> dict[str, Outcome]:
    """Start every job at once and wait at most ``timeout`` seconds in total for them."""
    threads = [_Job(name, func) for name, func in jobs.items()]
    for t in threads:
        t.start()
    deadline = time.perf_counter() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.perf_counter()))
    results: dict[str, Outcome] = {}
    for t in threads:
        if t.is_alive():
            results[t.probe] = Outcome(
                t.probe, status="timeout", error=f"did not answer within {timeout:g}s", seconds=timeout
            )
        else:
            results[t.probe] = t.outcome
    return results
