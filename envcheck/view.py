"""The one view of a report: which facts to show, each formatted once, for every output.

``build_view(report, verbose)`` chooses and formats the facts (units, CUDA versions, what each
framework sees); ``render.py`` lays the view out as rich panels and ``markdown.py`` as GitHub
tables, so the terminal and a pasted issue always say the same thing the same way.

No verdicts here: a fact is only emphasised (``tone``) when a rule's finding is about it, e.g.
a GPU's clock events are called "throttled" only when the ``gpu-throttled`` rule fired for that
GPU, with the reasons the rule found slowing it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from envcheck.knowledge._version import cuda_text
from envcheck.models import (
    CudaInfo,
    Finding,
    Framework,
    FrameworksInfo,
    Gpu,
    NvidiaInfo,
    Report,
    Severity,
    Snapshot,
    TpuInfo,
)

Tone = Literal["plain", "dim", "warn", "bad"]

#: how the report's facts origin reads in a sentence
SOURCES = {
    "probe": "this machine",
    "collect_env": "pasted collect_env output",
    "envcheck-json": "a saved report",
}

#: CUDA runtime error codes the device-count call returns on broken machines (cuda_runtime_api.h)
CUDA_ERRORS = {
    3: "initialization error",
    35: "insufficient driver",
    100: "no CUDA-capable device",
    101: "invalid device ordinal",
    802: "system not ready (fabric manager?)",
    804: "forward compatibility not supported on this GPU",
    999: "unknown error",
}


# --------------------------------------------------------------------------- formatters


def fmt_bytes(n: int | None) -> str:
    """1536 -> '1.5 KiB'; None -> '—'."""
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover  (the loop returns at TiB)


def fmt_mib(n: int | float | None) -> str:
    """A MiB count (NVML's unit) in the same units as :func:`fmt_bytes`."""
    return fmt_bytes(None if n is None else int(n * 1024 * 1024))


def fmt_cuda(v: int | None) -> str:
    """CUDA's 1000*major + 10*minor encoding -> '12.2'; 0 -> 'none (0)'; None -> '—'."""
    if v is None:
        return "—"
    return cuda_text(v) or "none (0)"


def fmt_cuda_error(code: int) -> str:
    name = CUDA_ERRORS.get(code)
    return f"error {code}" + (f" ({name})" if name else "")


# --------------------------------------------------------------------------- view model


@dataclass(frozen=True)
class Cell:
    """One shown value; ``text=None`` is an unknown fact (shown as a dash)."""

    text: str | None
    tone: Tone = "plain"


@dataclass(frozen=True)
class Grid:
    columns: tuple[str, ...]
    rows: list[list[Cell]]
    title: str | None = None


@dataclass(frozen=True)
class Note:
    text: str
    tone: Tone = "dim"


@dataclass
class Block:
    """One layer of the machine: key facts, tables, notes, and why parts of it are unavailable."""

    title: str
    facts: list[tuple[str, Cell]] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    #: shown instead of the grids when there is nothing to list
    empty: str | None = None


@dataclass(frozen=True)
class Counts:
    errors: int
    warnings: int
    infos: int

    @property
    def problems(self) -> int:
        return self.errors + self.warnings


@dataclass(frozen=True)
class ReportView:
    tool_version: str
    schema_version: str
    created_at: str | None
    #: where the facts come from, as a phrase ("this machine", "a saved report")
    source: str
    counts: Counts
    #: the findings to show, most severe first (notes only with verbose)
    findings: list[Finding]
    hidden_notes: int
    blocks: list[Block]
    #: rules skipped for lack of facts: how many, and (verbose) which and why
    skipped_count: int
    skipped: list[tuple[str, str]]
    timings: list[tuple[str, float, str]]
    #: a pasted report: the facts a verdict would need that the paste does not hold, and how to get
    #: each (so "nothing wrong" never reads as "nothing to see")
    lacking: list[tuple[str, str]] = field(default_factory=list)


def _cell(value: object) -> Cell:
    if value is None or value in ("", []):
        return Cell(None)
    if isinstance(value, bool):
        return Cell("yes" if value else "no")
    if isinstance(value, list):
        return Cell(", ".join(str(x) for x in value))
    return value if isinstance(value, Cell) else Cell(str(value))


def _facts(rows: Iterable[tuple[str, object]]) -> list[tuple[str, Cell]]:
    return [(k, _cell(v)) for k, v in rows]


def counts(report: Report) -> Counts:
    def n(sev: Severity) -> int:
        return sum(1 for f in report.findings if f.severity is sev)

    return Counts(n(Severity.ERROR), n(Severity.WARNING), n(Severity.INFO))


def _about(findings: list[Finding], subject: str, rule_id: str | None = None) -> list[Finding]:
    return [f for f in findings if f.subject == subject and (rule_id is None or f.id == rule_id)]


def _tone_of(findings: list[Finding]) -> Tone:
    if not findings:
        return "plain"
    worst = min(findings, key=lambda f: f.severity.rank)
    tone: Tone = "bad" if worst.severity is Severity.ERROR else "warn"
    return tone if worst.severity is not Severity.INFO else "plain"


# --------------------------------------------------------------------------- blocks


def _system(s: Snapshot, verbose: bool) -> Block | None:
    sysi, cpu, mem, disk = s.system, s.cpu, s.memory, s.disk
    if sysi is None and cpu is None and mem is None and disk is None:
        return None
    rows: list[tuple[str, object]] = []
    if sysi is not None:
        py = sysi.python
        cont = sysi.container
        where: list[str] = []
        if cont is not None:
            if cont.runtime:
                where.append(f"container ({cont.runtime})")
            if cont.kubernetes:
                where.append("Kubernetes")
            if cont.wsl:
                where.append("WSL2")
        rows += [
            ("OS", " · ".join(x for x in (sysi.distro or sysi.os, sysi.kernel, sysi.arch) if x) or None),
            ("glibc", sysi.glibc),
            (
                "Python",
                " ".join(x for x in (py.version, f"({py.kind})" if py.kind else None, py.executable) if x)
                if py
                else None,
            ),
            ("Runs in", ", ".join(where) if where else ("bare metal / VM" if cont is not None else None)),
        ]
        if verbose:
            rows.append(("Host", sysi.hostname))
    if cpu is not None:
        topo = "/".join(str(x) if x is not None else "?" for x in (cpu.sockets, cpu.cores, cpu.threads))
        clock = f" @ {cpu.mhz_max / 1000:.2f} GHz" if cpu.mhz_max else ""
        rows.append(("CPU", f"{cpu.model or '?'}{clock} · sockets/cores/threads {topo}"))
        if cpu.flags is not None:
            rows.append(("ISA", ", ".join(cpu.flags) or "none of interest"))
        if verbose:
            rows += [("NUMA nodes", cpu.numa_nodes), ("Usable CPUs", cpu.usable_cpus)]
    if mem is not None:
        rows.append(
            (
                "RAM",
                f"{fmt_bytes(mem.total_bytes)} total · {fmt_bytes(mem.available_bytes)} available"
                if mem.total_bytes is not None
                else None,
            )
        )
        rows.append(("/dev/shm", None if mem.shm_total_bytes is None else fmt_bytes(mem.shm_total_bytes)))
        if verbose:
            rows += [
                ("Swap", None if mem.swap_total_bytes is None else fmt_bytes(mem.swap_total_bytes)),
                (
                    "cgroup limit",
                    None if mem.cgroup_limit_bytes is None else fmt_bytes(mem.cgroup_limit_bytes),
                ),
            ]
    if disk is not None:
        for d in disk.disks:
            rows.append(
                (
                    f"Disk {d.label}",
                    d.error or f"{fmt_bytes(d.free_bytes)} free of {fmt_bytes(d.total_bytes)}",
                )
            )
    block = Block("System", facts=_facts(rows))
    block.unavailable = [
        f"{name}: {sec.error}"
        for name, sec in (("system", sysi), ("cpu", cpu), ("memory", mem), ("disk", disk))
        if sec is not None and sec.error
    ]
    return block


def _gpu_grid(gpus: list[Gpu], findings: list[Finding], verbose: bool) -> Grid:
    columns: tuple[str, ...] = ("#", "GPU", "CC", "memory", "PCIe", "power", "temp", "util", "ECC", "MIG")
    if verbose:
        columns += ("bus id",)
    rows: list[list[Cell]] = []
    for g in gpus:
        mem = (
            f"{fmt_mib(g.memory_used_mib or 0)} / {fmt_mib(g.memory_total_mib)}"
            if g.memory_total_mib is not None
            else None
        )
        pcie = None
        if g.pcie is not None and g.pcie.width_max is not None:
            p = g.pcie
            pcie = f"gen{p.gen_current or '?'}/{p.gen_max or '?'} x{p.width_current or '?'}/{p.width_max}"
        power = f"{g.power_draw_w or 0:.0f}/{g.power_limit_w:.0f} W" if g.power_limit_w else None
        ecc = None
        if g.ecc is not None and g.ecc.mode_current is not None:
            ecc = "on" if g.ecc.mode_current else "off"
            bad = (g.ecc.volatile_uncorrected or 0) + (g.ecc.aggregate_uncorrected or 0)
            if bad:
                ecc += f" ({bad} uncorr.)"
        mig = None
        if g.mig_mode_current is not None:
            mig = "on" if g.mig_mode_current else "off"
            if g.mig_devices:
                mig += f" ({len(g.mig_devices)})"
        subject = _subject(g)
        row = [
            Cell(str(g.index)),
            Cell(g.name or "?", _tone_of(_about(findings, subject))),
            _cell(g.compute_capability),
            _cell(mem),
            _cell(pcie),
            _cell(power),
            _cell(f"{g.temperature_c}°C" if g.temperature_c is not None else None),
            _cell(f"{g.utilization_gpu_pct}%" if g.utilization_gpu_pct is not None else None),
            _cell(ecc),
            _cell(mig),
        ]
        if verbose:
            row.append(_cell(g.bus_id))
        rows.append(row)
    return Grid(columns, rows)


def _subject(g: Gpu) -> str:
    # the rules' subject for a GPU (envcheck.rules._facts.gpu_subject), matched to place their notes
    return f"GPU {g.index}" + (f" ({g.name})" if g.name else "")


def _gpu_notes(g: Gpu, findings: list[Finding], verbose: bool) -> Note | None:
    extra: list[str] = []
    throttled = _about(findings, _subject(g), "gpu-throttled")
    slowing: list[str] = []
    for f in throttled:
        slowing += [str(r) for r in f.facts.get("slowing") or f.facts.get("throttle_reasons") or []]
    if slowing:
        extra.append(f"throttled: {', '.join(dict.fromkeys(slowing))}")
    elif verbose and g.throttle_reasons:
        extra.append(f"clock events: {', '.join(g.throttle_reasons)}")
    if verbose and g.processes:
        extra.append(
            "processes: "
            + ", ".join(f"{p.pid} {p.name or ''} {p.used_memory_mib or '?'} MiB".strip() for p in g.processes)
        )
    if verbose and g.unavailable:
        extra.append("unavailable: " + "; ".join(f"{k}: {v}" for k, v in sorted(g.unavailable.items())))
    if verbose and g.uuid:
        extra.insert(0, g.uuid)
    if not extra:
        return None
    return Note(f"GPU {g.index}: " + " · ".join(extra), "warn" if slowing else "dim")


def _nvidia(n: NvidiaInfo | None, findings: list[Finding], verbose: bool) -> Block:
    block = Block("NVIDIA")
    if n is None:
        block.unavailable.append("not collected")
        return block
    pci = n.pci_devices
    mod = n.kernel_module
    nvml = n.nvml
    rows: list[tuple[str, object]] = [
        (
            "PCI (0x10de)",
            None
            if pci is None
            else (", ".join(f"{d.address} [{d.driver or 'no driver'}]" for d in pci) or "no NVIDIA devices"),
        ),
        (
            "Kernel module",
            None
            if mod is None
            else (f"nvidia {mod.version}" if mod.loaded else "not loaded")
            + (" · nouveau loaded" if mod.nouveau_loaded else ""),
        ),
        (
            "Device nodes",
            None
            if n.device_nodes is None
            else (", ".join(n.device_nodes) or "none") + (" · /dev/dxg (WSL2)" if n.dxg else ""),
        ),
        (
            "NVML",
            None
            if nvml is None
            else (
                "ok" if nvml.ok else f"failed: {nvml.name or ''} ({nvml.code}) {nvml.message or ''}".strip()
            ),
        ),
        ("Driver", n.driver_version),
        ("Driver's CUDA ceiling", fmt_cuda(n.cuda_driver_version) if n.cuda_driver_version else None),
    ]
    if n.fabric_manager:
        rows.append(("Fabric manager", n.fabric_manager))
    block.facts = _facts(rows)
    if n.gpus:
        block.grids.append(_gpu_grid(n.gpus, findings, verbose))
        block.notes += [note for g in n.gpus if (note := _gpu_notes(g, findings, verbose)) is not None]
    if verbose and n.topology:
        names = tuple(f"GPU{i}" for i in range(len(n.topology)))
        block.grids.append(
            Grid(
                ("", *names),
                [[Cell(names[i]), *map(Cell, row)] for i, row in enumerate(n.topology)],
                "topology",
            )
        )
    if n.error:
        block.unavailable.append(n.error)
    return block


def _nvcc(c: CudaInfo) -> str | None:
    where = c.nvcc_on_path[0] if c.nvcc_on_path else None
    if c.nvcc_version and where:
        return f"{c.nvcc_version} ({where})"
    if c.nvcc_on_path is not None and not c.nvcc_on_path:
        return "not on PATH"
    return c.nvcc_version or where


def _cuda(c: CudaInfo | None, verbose: bool) -> Block:
    block = Block("CUDA user space")
    if c is None:
        block.unavailable.append("not collected")
        return block
    rows: list[tuple[str, object]] = []
    if c.toolkits is not None:
        rows.append(("Toolkits", ", ".join(f"{t.version or '?'} ({t.path})" for t in c.toolkits) or "none"))
    rows += [
        ("nvcc", _nvcc(c)),
        ("CUDA_HOME", c.cuda_home),
        ("Runtime (cudart)", fmt_cuda(c.runtime_version) if c.runtime_version is not None else None),
        (
            "Driver (cudaDriverGetVersion)",
            None
            if c.driver_version is None
            else ("0 — no driver installed" if c.driver_version == 0 else fmt_cuda(c.driver_version)),
        ),
        (
            "cudaGetDeviceCount",
            None
            if c.device_count_code is None
            else (
                f"{c.device_count} device(s)"
                if c.device_count_code == 0
                else fmt_cuda_error(c.device_count_code)
            ),
        ),
    ]
    if verbose:
        rows.append(("/usr/local/cuda ->", c.usr_local_cuda_target))
    block.facts = _facts(rows)
    libs = [
        [
            Cell(lib.name),
            Cell(lib.version) if lib.version else Cell(lib.error, "dim"),
            _cell(lib.origin),
            Cell(lib.path or "not found"),
        ]
        for lib in c.libraries or []
        if lib.path is not None or verbose
    ]
    if libs:
        block.grids.append(Grid(("library", "version", "from", "file"), libs))
    if c.error:
        block.unavailable.append(c.error)
    return block


def _tpu(t: TpuInfo | None, verbose: bool) -> Block | None:
    if t is None:
        return None
    present = bool(t.pci_devices or t.accel_nodes or t.vfio_nodes or t.libtpu_version or t.env)
    if not present and not verbose and not t.error:
        return None
    rows: list[tuple[str, object]] = [
        ("PCI (0x1ae0)", None if t.pci_devices is None else (len(t.pci_devices) or "none")),
        ("Generation", t.generation),
        (
            "Devices",
            (t.accel_nodes or []) + (t.vfio_nodes or []) or ("none" if t.accel_nodes is not None else None),
        ),
        ("libtpu", t.libtpu_version or "not installed"),
        (
            "Held by",
            ", ".join(f"{h.pid} {h.command or ''} ({h.device})" for h in t.holders) if t.holders else None,
        ),
        ("Lock file", t.lockfile),
    ]
    block = Block("TPU", facts=_facts(rows))
    if t.error:
        block.unavailable.append(t.error)
    return block


def sees(fw: Framework) -> str | None:
    """What the imported framework computes on, accelerators first: '2× NVIDIA A100 (cuda:0-1)'.

    Every framework lists the CPU too, which says nothing; only when it sees nothing else is
    that the answer ("CPU only"). None when it was not imported (no ``--deep``).
    """
    deep = fw.deep
    if deep is None:
        return None
    if not deep.ok:
        return f"failed: {deep.error}"
    accel = [d for d in deep.devices if not d.split(":")[0].strip().lower().startswith("cpu")]
    if not accel:
        return "CPU only" if deep.devices else "no devices"
    ids = [d.split(" ", 1)[0] for d in accel]
    names = [d.split(" ", 1)[1] if " " in d else "" for d in accel]
    if len(accel) > 1 and len(set(names)) == 1 and names[0]:
        return f"{len(accel)}× {names[0]} ({ids[0]}…{ids[-1]})"
    return ", ".join(accel)


def _frameworks(fw: FrameworksInfo | None, findings: list[Finding], verbose: bool) -> Block:
    block = Block("Frameworks", empty="no framework installed (torch, tensorflow, jax)")
    if fw is None:
        block.unavailable.append("not collected")
        return block
    rows: list[list[Cell]] = []
    for f in fw.frameworks:
        if not f.installed:
            if verbose:
                rows.append([Cell(f.name), Cell("not installed", "dim"), *[Cell(None)] * 5])
            continue
        seen = sees(f)
        if seen is None:
            seen_cell = Cell("needs --deep", "dim")
        else:
            failed = f.deep is not None and not f.deep.ok
            seen_cell = Cell(seen, "bad" if failed else _tone_of(_about(findings, f.name)))
        if f.deep is not None and f.deep.ok and verbose and f.deep.import_seconds:
            seen_cell = Cell(f"{seen_cell.text} ({f.deep.import_seconds:.1f} s import)", seen_cell.tone)
        arch = f.arch_list
        arch_text = (
            None
            if arch is None
            else (" ".join(arch) if verbose or len(arch) <= 4 else f"{arch[0]} … {arch[-1]}")
        )
        rows.append(
            [
                Cell(f.name),
                Cell(f.version or "?"),
                Cell(f.build or "?"),
                _cell(f.cuda_build or f.rocm_build),
                _cell(f.cudnn_build),
                _cell(arch_text),
                seen_cell,
            ]
        )
        if f.error:
            block.notes.append(Note(f"{f.name}: {f.error}", "bad"))
        if verbose and f.deep is not None and f.deep.loaded_libraries:
            libs = ", ".join(f"{lib.soname} ← {lib.origin or lib.path}" for lib in f.deep.loaded_libraries)
            block.notes.append(Note(f"{f.name} loaded: {libs}"))
    if rows:
        block.grids.append(Grid(("framework", "version", "build", "CUDA", "cuDNN", "arch", "sees"), rows))
    if verbose and fw.nvidia_wheels:
        block.notes.append(
            Note("nvidia wheels: " + ", ".join(f"{k}=={v}" for k, v in sorted(fw.nvidia_wheels.items())))
        )
    if fw.error:
        block.unavailable.append(fw.error)
    return block


def _env(s: Snapshot) -> Block | None:
    if s.system is None or not s.system.env:
        return None
    return Block("Environment", facts=_facts(sorted(s.system.env.items())))


def build_view(report: Report, verbose: bool = False) -> ReportView:
    """Choose and format what a person sees of ``report`` (``verbose``: every fact)."""
    s = report.snapshot
    findings = sorted(report.findings, key=lambda f: (f.severity.rank, f.id))
    shown = [f for f in findings if verbose or f.severity is not Severity.INFO]
    blocks: list[Block | None] = [
        _system(s, verbose),
        _nvidia(s.nvidia, findings, verbose),
        _cuda(s.cuda, verbose),
        _tpu(s.tpu, verbose),
        _frameworks(s.frameworks, findings, verbose),
        _env(s) if verbose else None,
    ]
    return ReportView(
        tool_version=report.tool_version,
        schema_version=report.schema_version,
        created_at=report.created_at,
        source=SOURCES.get(s.source, s.source),
        counts=counts(report),
        findings=shown,
        hidden_notes=len(findings) - len(shown),
        blocks=[b for b in blocks if b is not None],
        skipped_count=len(report.skipped),
        skipped=[(r.id, r.reason) for r in report.skipped] if verbose else [],
        timings=[(t.name, t.seconds, t.status) for t in report.timings] if verbose else [],
        lacking=_lacking(s),
    )


def _lacking(s: Snapshot) -> list[tuple[str, str]]:
    if s.paste is None:
        return []
    from envcheck.reply import missing_facts  # pasted reports only: off the local report's path

    return missing_facts(s)
