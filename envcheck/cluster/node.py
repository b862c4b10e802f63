"""``envcheck cluster-node``: what runs on each node. Prints protocol lines part by part.

The node keeps its own deadline: when it passes, the node says so, kills what it started and
exits, so a hung framework on one node can neither hang the run nor leave processes behind.
SIGTERM and SIGHUP (the engine cancelling, the SSH channel closing) do the same.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import TextIO

from envcheck.cluster import protocol

#: seconds kept back from the deadline so each part's own timeout fires before the node's
_SLACK = 5.0
#: environment variables naming this node, by engine
NODE_NAME_VARS = ("ENVCHECK_NODE_NAME", "SLURMD_NODENAME", "NODE_NAME", "K8S_NODE_NAME")


@dataclass
class NodeOptions:
    smoke: bool = False
    smoke_frameworks: list[str] = field(default_factory=list)
    bench: bool = False
    quick: bool = True
    bench_backend: str = "auto"
    #: seconds the whole node run may take
    deadline: float = 60.0
    #: seconds any one external call of the report may take
    probe_timeout: float = 10.0


class _Writer:
    """Protocol lines to stdout, one writer at a time (the watchdog may write too)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, part: str, *, force: bool = False, **fields: object) -> None:
        """``force`` (the watchdog): write even when a stuck writer holds the lock past a second."""
        got = self._lock.acquire(timeout=0.2 if force else -1)
        try:
            self._out.write(protocol.line(part, **fields))
            self._out.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the driver went away: nothing left to tell
        finally:
            if got:
                self._lock.release()


def _kill_children() -> None:
    """Everything this process started (smoke/bench children run in sessions of their own)."""
    try:
        import psutil

        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
    except Exception:
        pass


def _die(code: int) -> None:
    _kill_children()
    os._exit(code)


def _arm(writer: _Writer, deadline: float, start: float) -> None:
    def expire() -> None:
        writer.send("deadline", force=True, seconds=round(time.perf_counter() - start, 3), limit=deadline)
        _die(124)

    timer = threading.Timer(deadline, expire)
    timer.daemon = True
    timer.start()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        _die(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread (a library caller): engine timeouts hold
            signal.signal(sig, on_signal)


def _part(writer: _Writer, name: str, run: object) -> None:
    try:
        data = run() if callable(run) else run
    except Exception as exc:  # one part failing must not cost the others
        writer.send(name, error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return
    writer.send(name, data=data)


def run_node(opts: NodeOptions, out: TextIO | None = None) -> int:
    """Report (and smoke-test, benchmark) this node, printing each part as it is ready."""
    start = time.perf_counter()
    writer = _Writer(out or sys.stdout)
    _arm(writer, opts.deadline, start)
    from envcheck import __version__

    names = {v: os.environ[v] for v in NODE_NAME_VARS if os.environ.get(v)}
    writer.send(
        "hello",
        hostname=socket.gethostname(),
        pid=os.getpid(),
        envcheck=__version__,
        python=sys.executable,
        names=names,
    )

    def remaining() -> float:
        return max(1.0, opts.deadline - (time.perf_counter() - start) - _SLACK)

    def report() -> object:
        from envcheck.probes import ProbeContext
        from envcheck.report import check

        return check(ProbeContext(timeout=min(opts.probe_timeout, remaining()))).model_dump()

    def net() -> object:
        from envcheck.cluster.netprobe import probe_net

        return probe_net().model_dump()

    _part(writer, "report", report)
    _part(writer, "net", net)
    if opts.smoke:

        def smoke() -> object:
            from envcheck.smoke.runner import DEFAULT_TIMEOUT, run_smoke

            timeout = min(DEFAULT_TIMEOUT, remaining())
            return run_smoke(opts.smoke_frameworks or None, timeout=timeout).model_dump(mode="json")

        _part(writer, "smoke", smoke)
    if opts.bench:

        def bench() -> object:
            from envcheck.bench.runner import DEFAULT_TIMEOUT, run_bench

            limit = DEFAULT_TIMEOUT["quick" if opts.quick else "full"]
            report = run_bench(
                quick=opts.quick,
                backend=opts.bench_backend,
                devices="all",
                timeout=min(limit, remaining()),
                fixed_sizes=True,  # outliers need the same work on every node
            )
            return report.model_dump(mode="json")

        _part(writer, "bench", bench)
    writer.send("done", seconds=round(time.perf_counter() - start, 3))
    return 0
