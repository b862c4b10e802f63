"""The facts compared across nodes, layer by layer, each read from one node's Report (pure).

Each fact says how to read it and, when nodes disagree, which drift finding that is and how
bad. ``None`` from a reader means "this node could not tell" and is shown as such, never
counted as drift; "none" and "not installed" are real values and are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from envcheck.models import Report, Severity, Snapshot

UNKNOWN = "—"


@dataclass(frozen=True)
class Fact:
    layer: str
    name: str
    read: Callable[[Snapshot, Report], str | None]
    #: finding id when nodes disagree (None: shown in the table only)
    drift: str | None = None
    severity: Severity = Severity.WARNING
    #: what to do about a difference
    fix: str | None = None
    subject: str | None = None


def _cuda_int(v: int | None) -> str | None:
    if v is None:
        return None
    if v <= 0:
        return "none"
    return f"{v // 1000}.{(v % 1000) // 10}"


def _gib(n: int | None) -> str | None:
    return None if n is None else f"{round(n / 2**30)} GiB"


def _library(s: Snapshot, name: str) -> str | None:
    if s.cuda is None or s.cuda.libraries is None:
        return None
    found = [lib for lib in s.cuda.libraries if lib.name == name and lib.version]
    return found[0].version if found else "none"


def _nccl(s: Snapshot, r: Report) -> str | None:
    wheels = (s.frameworks.nvidia_wheels or {}) if s.frameworks else {}
    wheel = next((v for k, v in sorted(wheels.items()) if k.startswith("nvidia-nccl")), None)
    return wheel or _library(s, "nccl")


def _gpus(s: Snapshot, r: Report) -> str | None:
    nv = s.nvidia
    if nv is None:
        return None
    if nv.gpus:
        names: dict[str, int] = {}
        for g in nv.gpus:
            names[g.name or "?"] = names.get(g.name or "?", 0) + 1
        return ", ".join(f"{n} × {name}" for name, n in names.items())
    if nv.pci_devices is not None and not any(d.vendor_id.lower().endswith("10de") for d in nv.pci_devices):
        return "none"
    return None


def _framework(name: str) -> Callable[[Snapshot, Report], str | None]:
    def read(s: Snapshot, r: Report) -> str | None:
        if s.frameworks is None:
            return None
        fw = next((f for f in s.frameworks.frameworks if f.name == name), None)
        if fw is None or fw.error:
            return None
        return (fw.version or "?") if fw.installed else "not installed"

    return read


def _framework_cuda(name: str) -> Callable[[Snapshot, Report], str | None]:
    def read(s: Snapshot, r: Report) -> str | None:
        fw = s.framework(name)
        if fw is None:
            return None
        return fw.cuda_build or fw.build or None

    return read


def _quota(s: Snapshot, r: Report) -> str | None:
    if s.cpu is None or s.cpu.error:
        return None
    q = s.cpu.cgroup_cpu_quota
    return "unlimited" if q is None else f"{q:g} CPUs"


def _checks(s: Snapshot, r: Report) -> str | None:
    errors = sum(1 for f in r.findings if f.severity is Severity.ERROR)
    warnings = sum(1 for f in r.findings if f.severity is Severity.WARNING)
    return f"{errors} errors, {warnings} warnings"


_CPU_FIX = (
    "a node with fewer CPUs (a cgroup quota, an affinity mask) starves the data loaders and sets the "
    "pace of every step: give every node's job the same CPU allocation"
)
_VERSION_FIX = "install the same version on every node (one image or one lock file for the cluster)"

FACTS: tuple[Fact, ...] = (
    Fact("system", "OS", lambda s, r: (s.system.distro or s.system.os) if s.system else None),
    Fact("system", "kernel", lambda s, r: s.system.kernel if s.system else None),
    Fact("system", "Python", lambda s, r: s.system.python.version if s.system and s.system.python else None),
    Fact("system", "envcheck", lambda s, r: r.tool_version),
    Fact("cpu", "model", lambda s, r: s.cpu.model if s.cpu else None),
    Fact(
        "cpu",
        "usable CPUs",
        lambda s, r: str(s.cpu.usable_cpus) if s.cpu and s.cpu.usable_cpus else None,
        drift="drift-cpu",
        fix=_CPU_FIX,
    ),
    Fact("cpu", "CPU quota", _quota, drift="drift-cpu", fix=_CPU_FIX),
    Fact("memory", "RAM", lambda s, r: _gib(s.memory.total_bytes) if s.memory else None),
    Fact(
        "nvidia",
        "GPUs",
        _gpus,
        drift="drift-gpu",
        severity=Severity.ERROR,
        fix="a node with fewer or other GPUs stalls or fails the job: run envcheck on it to see why "
        "(a GPU fallen off the bus, a driver that lost one)",
    ),
    Fact(
        "nvidia",
        "driver",
        lambda s, r: s.nvidia.driver_version if s.nvidia else None,
        drift="drift-driver",
        fix="install the same NVIDIA driver on every node (drain the odd ones and reimage)",
    ),
    Fact(
        "nvidia",
        "CUDA (driver)",
        lambda s, r: _cuda_int(s.nvidia.cuda_driver_version) if s.nvidia else None,
    ),
    Fact(
        "cuda",
        "runtime",
        lambda s, r: _cuda_int(s.cuda.runtime_version) if s.cuda else None,
        drift="drift-cuda",
        fix=_VERSION_FIX,
    ),
    Fact("cuda", "cuDNN", lambda s, r: _library(s, "cudnn"), drift="drift-cudnn", fix=_VERSION_FIX),
    Fact(
        "cuda",
        "NCCL",
        _nccl,
        drift="drift-nccl",
        severity=Severity.ERROR,
        fix="different NCCL versions in one job can hang or corrupt collectives: " + _VERSION_FIX,
    ),
    *(
        f
        for name in ("torch", "tensorflow", "jax")
        for f in (
            Fact(
                "frameworks",
                name,
                _framework(name),
                drift="drift-framework",
                severity=Severity.ERROR,
                fix=f"one {name} version per job: ranks with different versions disagree on "
                "collectives and checkpoints; " + _VERSION_FIX,
                subject=name,
            ),
            Fact(
                "frameworks",
                f"{name} build",
                _framework_cuda(name),
                drift="drift-cuda",
                fix=_VERSION_FIX,
                subject=name,
            ),
        )
    ),
    Fact("checks", "findings", _checks),
)


def read_fact(fact: Fact, report: Report) -> str:
    """The fact's value on one node, or UNKNOWN when the node could not tell."""
    try:
        value = fact.read(report.snapshot, report)
    except (AttributeError, TypeError, ValueError):  # a report from an older envcheck lacks a field
        value = None
    return UNKNOWN if value in (None, "") else str(value)
