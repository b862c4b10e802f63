"""Probes touch the machine and return their part of the Snapshot; ``collect`` runs them all.

Each probe module exposes ``probe(ctx) -> Section``. Probes run concurrently under one
deadline; one that raises or hangs yields its section with ``error`` set, and the others
still complete.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from envcheck import _runner
from envcheck.models import (
    CpuInfo,
    CudaInfo,
    DiskInfo,
    FrameworksInfo,
    MemoryInfo,
    NvidiaInfo,
    ProbeTiming,
    Section,
    Snapshot,
    SystemInfo,
    TpuInfo,
)


@dataclass(frozen=True)
class ProbeContext:
    """Where and how to look. Tests point ``root`` at a fake /proc, /sys and /dev tree."""

    root: Path = Path("/")
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    #: seconds any single external call (command, child interpreter) may take
    timeout: float = 10.0
    #: import each framework in a child interpreter (``--deep``)
    deep: bool = False
    #: seconds one framework's child may take to import and answer (TF alone needs ~5-15 s)
    deep_timeout: float = 120.0
    #: the interpreter whose frameworks are inspected
    python: str = sys.executable
    #: working directory reported in the disk section
    cwd: Path = field(default_factory=Path.cwd)
    #: home directory reported in the disk section
    home: Path = field(default_factory=Path.home)
    #: told what long steps (``--deep`` children) run now: ``(task, doing)``, ``doing=None`` when done
    on_progress: Callable[[str, str | None], None] | None = field(default=None, compare=False)

    def path(self, absolute: str) -> Path:
        """``absolute`` ("/proc/meminfo") inside this context's root."""
        return self.root / absolute.lstrip("/")


SectionProbe = Callable[[ProbeContext], Section]


# Each probe module is imported inside its own worker thread, so the CUDA probe's child
# interpreter starts at once and runs on another core while the other modules load.


def _system(ctx: ProbeContext) -> Section:
    from envcheck.probes import system

    return system.probe(ctx)


def _cpu(ctx: ProbeContext) -> Section:
    from envcheck.probes import cpu

    return cpu.probe(ctx)


def _memory(ctx: ProbeContext) -> Section:
    from envcheck.probes import memory

    return memory.probe(ctx)


def _disk(ctx: ProbeContext) -> Section:
    from envcheck.probes import memory

    return memory.probe_disk(ctx)


def _nvidia(ctx: ProbeContext) -> Section:
    from envcheck.probes import nvidia

    return nvidia.probe(ctx)


def _cuda(ctx: ProbeContext) -> Section:
    from envcheck.probes import cuda

    return cuda.probe(ctx)


def _cuda_started(ctx: ProbeContext) -> SectionProbe:
    """The CUDA probe with its library child already running; the plain probe if starting it failed.

    The child (dlopen of libcudart, libcudnn, ...) is the slowest step of the default report;
    started before the other probe threads, it does not wait behind them for the GIL.
    """
    try:
        from envcheck.probes import cuda

        started = cuda.start(ctx)
    except Exception:  # the probe thread will meet the same failure and report it as data
        return _cuda
    return lambda c: cuda.probe(c, started)


def _tpu(ctx: ProbeContext) -> Section:
    from envcheck.probes import tpu

    return tpu.probe(ctx)


def _frameworks(ctx: ProbeContext) -> Section:
    from envcheck.probes import frameworks

    return frameworks.probe(ctx)


def _probes() -> dict[str, tuple[type[Section], SectionProbe]]:
    """Section name -> (its class, the probe that fills it); the slow starter (cuda) first."""
    return {
        "cuda": (CudaInfo, _cuda),
        "system": (SystemInfo, _system),
        "cpu": (CpuInfo, _cpu),
        "memory": (MemoryInfo, _memory),
        "disk": (DiskInfo, _disk),
        "nvidia": (NvidiaInfo, _nvidia),
        "tpu": (TpuInfo, _tpu),
        "frameworks": (FrameworksInfo, _frameworks),
    }


def collect(ctx: ProbeContext, *, overall_timeout: float | None = None) -> tuple[Snapshot, list[ProbeTiming]]:
    """Run every probe concurrently and assemble the Snapshot; never raises for a probe's sake."""
    probes = _probes()
    probes["cuda"] = (CudaInfo, _cuda_started(ctx))
    jobs: dict[str, Callable[[], Any]] = {name: partial(func, ctx) for name, (_, func) in probes.items()}
    limit = (
        overall_timeout
        if overall_timeout is not None
        else ctx.timeout * 2 + (ctx.deep_timeout if ctx.deep else 0)
    )
    outcomes = _runner.run_all(jobs, timeout=limit)
    sections: dict[str, Section] = {}
    timings: list[ProbeTiming] = []
    for name, (cls, _) in probes.items():
        out = outcomes[name]
        if out.status == "ok" and isinstance(out.value, cls):
            sections[name] = out.value
        else:
            why = out.error or f"probe returned {type(out.value).__name__}, not {cls.__name__}"
            sections[name] = cls(error=why)
        timings.append(ProbeTiming(name=name, seconds=round(out.seconds, 4), status=out.status))
    return Snapshot.model_validate({"source": "probe", **sections}), timings
