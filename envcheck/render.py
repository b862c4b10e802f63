"""Rich tables for people: problems first, then the key facts layer by layer; ``-v`` shows all.

Formatting lives only here: the models keep raw units (bytes, MiB, versions as reported).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from envcheck.knowledge._version import cuda_text
from envcheck.models import (
    CudaInfo,
    Finding,
    FrameworksInfo,
    Gpu,
    NvidiaInfo,
    Report,
    Section,
    Severity,
    Snapshot,
    TpuInfo,
)

_SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_SEVERITY_MARK = {Severity.ERROR: "✗ error", Severity.WARNING: "! warning", Severity.INFO: "i info"}
_MISSING = Text("—", style="dim")


def fmt_bytes(n: int | None) -> str:
    """1536 -> '1.5 KiB'; None -> '—'."""
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def fmt_cuda_int(v: int | None) -> str:
    """CUDA's 1000*major + 10*minor encoding -> '12.2'; 0 -> 'none (0)'."""
    if v is None:
        return "—"
    return cuda_text(v) or "none (0)"


def _val(v: object) -> RenderableType:
    if v is None or v in ("", []):
        return _MISSING
    if isinstance(v, bool):
        return Text("yes" if v else "no")
    if isinstance(v, list):
        return Text(", ".join(str(x) for x in v))
    return Text(str(v))


def _facts(title: str, rows: Iterable[tuple[str, object]]) -> Table:
    grid = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0), title=None)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, _val(value))
    return grid


def _section(title: str, body: RenderableType, section: Section | None) -> Panel:
    if section is not None and section.error:
        body = Group(Text(f"unavailable: {section.error}", style="red"), body)
    return Panel(body, title=f"[bold]{title}[/]", title_align="left", box=box.ROUNDED, padding=(0, 1))


def _unavailable(title: str, reason: str) -> Panel:
    return Panel(Text(f"unavailable: {reason}", style="red"), title=f"[bold]{title}[/]", title_align="left")


# --------------------------------------------------------------------------- findings


def findings_table(findings: list[Finding], verbose: bool) -> RenderableType:
    if not findings:
        return Text("✓ no problems found", style="bold green")
    table = Table(box=box.SIMPLE_HEAD, show_lines=False, expand=True, title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("problem", ratio=3, overflow="fold")
    table.add_column("fix", ratio=4, overflow="fold")
    for f in findings:
        if f.severity is Severity.INFO and not verbose:
            continue
        summary = Text()
        summary.append(f.summary)
        summary.append(f"\n{f.id}" + (f" · {f.subject}" if f.subject else ""), style="dim")
        fix = Text()
        if f.fix:
            fix.append(f.fix)
        for cmd in f.commands:
            fix.append(("\n" if fix else "") + f"$ {cmd}", style="bold green")
        table.add_row(Text(_SEVERITY_MARK[f.severity], style=_SEVERITY_STYLE[f.severity]), summary, fix)
    hidden = sum(1 for f in findings if f.severity is Severity.INFO) if not verbose else 0
    if hidden and table.row_count == 0:
        return Text(f"✓ no problems found ({hidden} notes: -v shows them)", style="bold green")
    if hidden:
        return Group(table, Text(f"  + {hidden} notes (-v shows them)", style="dim"))
    return table


# --------------------------------------------------------------------------- sections


def _system(s: Snapshot, verbose: bool) -> RenderableType | None:
    sysi, cpu, mem, disk = s.system, s.cpu, s.memory, s.disk
    rows: list[tuple[str, object]] = []
    if sysi is not None:
        py = sysi.python
        cont = sysi.container
        where = []
        if cont is not None:
            if cont.runtime:
                where.append(f"container ({cont.runtime})")
            if cont.kubernetes:
                where.append("kubernetes")
            if cont.wsl:
                where.append("WSL2")
        rows += [
            ("OS", " · ".join(x for x in (sysi.distro or sysi.os, sysi.kernel, sysi.arch) if x) or None),
            ("glibc", sysi.glibc),
            ("Python", f"{py.version} ({py.kind or '?'}) {py.executable or ''}".strip() if py else None),
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
            ("RAM", f"{fmt_bytes(mem.total_bytes)} total · {fmt_bytes(mem.available_bytes)} available")
        )
        rows.append(("/dev/shm", fmt_bytes(mem.shm_total_bytes)))
        if verbose:
            rows += [
                ("Swap", fmt_bytes(mem.swap_total_bytes)),
                ("cgroup limit", fmt_bytes(mem.cgroup_limit_bytes)),
            ]
    if disk is not None:
        for d in disk.disks:
            rows.append(
                (
                    f"Disk {d.label}",
                    d.error or f"{fmt_bytes(d.free_bytes)} free of {fmt_bytes(d.total_bytes)}",
                )
            )
    errors = [
        f"{name}: {sec.error}"
        for name, sec in (("system", sysi), ("cpu", cpu), ("memory", mem), ("disk", disk))
        if sec is not None and sec.error
    ]
    body: RenderableType = _facts("System", rows)
    if errors:
        body = Group(*(Text(f"unavailable: {e}", style="red") for e in errors), body)
    return Panel(body, title="[bold]System[/]", title_align="left", padding=(0, 1))


def _gpu_table(gpus: list[Gpu], verbose: bool) -> Table:
    t = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    for col in ("#", "GPU", "CC", "memory", "PCIe", "power", "temp", "util", "ECC", "MIG"):
        t.add_column(col, overflow="fold")
    for g in gpus:
        mem = (
            f"{(g.memory_used_mib or 0) / 1024:.1f}/{g.memory_total_mib / 1024:.0f} GiB"
            if g.memory_total_mib is not None
            else "—"
        )
        pcie = "—"
        if g.pcie is not None and g.pcie.width_max is not None:
            p = g.pcie
            pcie = f"gen{p.gen_current or '?'}/{p.gen_max or '?'} x{p.width_current or '?'}/{p.width_max}"
        power = f"{g.power_draw_w or 0:.0f}/{g.power_limit_w:.0f} W" if g.power_limit_w else "—"
        ecc = "—"
        if g.ecc is not None and g.ecc.mode_current is not None:
            ecc = "on" if g.ecc.mode_current else "off"
            bad = (g.ecc.volatile_uncorrected or 0) + (g.ecc.aggregate_uncorrected or 0)
            if bad:
                ecc += f" ({bad} uncorr.)"
        mig = "—"
        if g.mig_mode_current is not None:
            mig = "on" if g.mig_mode_current else "off"
            if g.mig_devices:
                mig += f" ({len(g.mig_devices)})"
        t.add_row(
            str(g.index),
            g.name or "?",
            g.compute_capability or "—",
            mem,
            pcie,
            power,
            f"{g.temperature_c}°C" if g.temperature_c is not None else "—",
            f"{g.utilization_gpu_pct}%" if g.utilization_gpu_pct is not None else "—",
            ecc,
            mig,
        )
    return t


#: clock-event reasons that are not a problem: an idle GPU clocks down by design
_BENIGN_CLOCK_REASONS = frozenset({"gpu_idle"})


def _nvidia(n: NvidiaInfo | None, verbose: bool) -> RenderableType:
    if n is None:
        return _unavailable("NVIDIA", "not collected")
    pci = n.pci_devices
    mod = n.kernel_module
    layers: list[tuple[str, object]] = [
        (
            "PCI (0x10de)",
            None
            if pci is None
            else (
                "no NVIDIA devices"
                if not pci
                else ", ".join(f"{d.address} [{d.driver or 'no driver'}]" for d in pci)
            ),
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
            if n.nvml is None
            else (
                "ok"
                if n.nvml.ok
                else f"failed: {n.nvml.name or ''} ({n.nvml.code}) {n.nvml.message or ''}".strip()
            ),
        ),
        ("Driver", n.driver_version),
        ("Driver's CUDA ceiling", fmt_cuda_int(n.cuda_driver_version) if n.cuda_driver_version else None),
    ]
    if n.fabric_manager:
        layers.append(("Fabric manager", n.fabric_manager))
    parts: list[RenderableType] = [_facts("NVIDIA", layers)]
    if n.gpus:
        parts.append(_gpu_table(n.gpus, verbose))
        for g in n.gpus:
            extra = []
            slowed = [r for r in g.throttle_reasons or [] if r not in _BENIGN_CLOCK_REASONS]
            if slowed:
                extra.append(f"throttled: {', '.join(slowed)}")
            if verbose and g.processes:
                extra.append(
                    "processes: "
                    + ", ".join(
                        f"{p.pid} {p.name or ''} {p.used_memory_mib or '?'} MiB".strip() for p in g.processes
                    )
                )
            if verbose and g.unavailable:
                extra.append(
                    "unavailable: " + "; ".join(f"{k}: {v}" for k, v in sorted(g.unavailable.items()))
                )
            if verbose and g.uuid:
                extra.insert(0, f"{g.uuid} · {g.bus_id or ''}")
            if extra:
                parts.append(
                    Text(
                        f"  GPU {g.index}: " + " · ".join(extra),
                        style="yellow" if slowed else "dim",
                    )
                )
    if verbose and n.topology:
        topo = Table(box=box.MINIMAL, title="topology", title_justify="left")
        topo.add_column("")
        for i in range(len(n.topology)):
            topo.add_column(f"GPU{i}")
        for i, row in enumerate(n.topology):
            topo.add_row(f"GPU{i}", *row)
        parts.append(topo)
    return _section("NVIDIA", Group(*parts), n)


#: CUDA runtime error codes the device-count call returns on broken machines (cuda_runtime_api.h)
_CUDA_ERRORS = {
    3: "initialization error",
    35: "insufficient driver",
    100: "no CUDA-capable device",
    101: "invalid device ordinal",
    802: "system not ready (fabric manager?)",
    804: "forward compatibility not supported on this GPU",
    999: "unknown error",
}


def _cuda_error(code: int) -> str:
    name = _CUDA_ERRORS.get(code)
    return f"error {code}" + (f" ({name})" if name else "")


def _nvcc(c: CudaInfo) -> str | None:
    where = c.nvcc_on_path[0] if c.nvcc_on_path else None
    if c.nvcc_version and where:
        return f"{c.nvcc_version} ({where})"
    if c.nvcc_on_path is not None and not c.nvcc_on_path:
        return "not on PATH"
    return c.nvcc_version or where


def _cuda(c: CudaInfo | None, verbose: bool) -> RenderableType:
    if c is None:
        return _unavailable("CUDA user space", "not collected")
    rows: list[tuple[str, object]] = []
    if c.toolkits is not None:
        rows.append(("Toolkits", ", ".join(f"{t.version or '?'} ({t.path})" for t in c.toolkits) or "none"))
    rows += [
        ("nvcc", _nvcc(c)),
        ("CUDA_HOME", c.cuda_home),
        ("Runtime (cudart)", fmt_cuda_int(c.runtime_version) if c.runtime_version is not None else None),
        (
            "Driver (cudaDriverGetVersion)",
            None
            if c.driver_version is None
            else ("0 — no driver installed" if c.driver_version == 0 else fmt_cuda_int(c.driver_version)),
        ),
        (
            "cudaGetDeviceCount",
            None
            if c.device_count_code is None
            else (
                f"{c.device_count} device(s)"
                if c.device_count_code == 0
                else _cuda_error(c.device_count_code)
            ),
        ),
    ]
    if verbose:
        rows.append(("/usr/local/cuda ->", c.usr_local_cuda_target))
    parts: list[RenderableType] = [_facts("CUDA", rows)]
    if c.libraries:
        t = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
        for col in ("library", "version", "from", "file"):
            t.add_column(col, overflow="fold")
        for lib in c.libraries:
            if lib.path is None and not verbose:
                continue
            t.add_row(
                lib.name,
                lib.version or (Text(lib.error, style="dim") if lib.error else "—"),
                lib.origin or "—",
                lib.path or "not found",
            )
        if t.row_count:
            parts.append(t)
    return _section("CUDA user space", Group(*parts), c)


def _tpu(t: TpuInfo | None, verbose: bool) -> RenderableType | None:
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
    return _section("TPU", _facts("TPU", rows), t)


def _frameworks(fw: FrameworksInfo | None, verbose: bool) -> RenderableType:
    if fw is None:
        return _unavailable("Frameworks", "not collected")
    t = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    for col in ("framework", "version", "build", "CUDA", "cuDNN", "arch", "sees"):
        t.add_column(col, overflow="fold")
    notes: list[RenderableType] = []
    for f in fw.frameworks:
        if not f.installed:
            if verbose:
                t.add_row(f.name, Text("not installed", style="dim"), "", "", "", "", "")
            continue
        sees: RenderableType = Text("--deep", style="dim")
        if f.deep is not None:
            if f.deep.ok:
                took = f" ({f.deep.import_seconds:.1f} s import)" if verbose and f.deep.import_seconds else ""
                sees = Text((", ".join(f.deep.devices) or "no devices") + took)
            else:
                sees = Text(f"failed: {f.deep.error}", style="red")
            if verbose and f.deep.loaded_libraries:
                libs = ", ".join(
                    f"{lib.soname} ← {lib.origin or lib.path}" for lib in f.deep.loaded_libraries
                )
                notes.append(Text(f"  {f.name} loaded: {libs}", style="dim"))
        arch = f.arch_list
        arch_text = (
            ""
            if arch is None
            else (" ".join(arch) if verbose or len(arch) <= 4 else f"{arch[0]} … {arch[-1]}")
        )
        t.add_row(
            f.name,
            f.version or "?",
            f.build or "?",
            f.cuda_build or "—",
            f.cudnn_build or "—",
            arch_text or "—",
            sees,
        )
        if f.error:
            notes.append(Text(f"  {f.name}: {f.error}", style="red"))
    parts: list[RenderableType] = [
        t if t.row_count else Text("no framework installed (torch, tensorflow, jax)", style="dim"),
        *notes,
    ]
    if verbose and fw.nvidia_wheels:
        parts.append(
            Text(
                "  nvidia wheels: " + ", ".join(f"{k}=={v}" for k, v in sorted(fw.nvidia_wheels.items())),
                style="dim",
            )
        )
    return _section("Frameworks", Group(*parts), fw)


def _env(s: Snapshot) -> RenderableType | None:
    if s.system is None or not s.system.env:
        return None
    return Panel(
        _facts("env", sorted(s.system.env.items())), title="[bold]Environment[/]", title_align="left"
    )


# --------------------------------------------------------------------------- report


def render_report(
    report: Report, console: Console, *, verbose: bool = False, elapsed: float | None = None
) -> None:
    """Print ``report`` for a person: verdict and fixes first, then the facts, layer by layer."""
    s = report.snapshot
    n_err = sum(f.severity is Severity.ERROR for f in report.findings)
    n_warn = sum(f.severity is Severity.WARNING for f in report.findings)
    origin = "" if s.source == "probe" else f" · facts from {s.source}"
    took = f" · {elapsed:.2f} s" if elapsed is not None else ""
    console.print(Text(f"envcheck {report.tool_version}{origin}{took}", style="bold"))
    console.print(findings_table(report.findings, verbose))
    blocks: list[RenderableType | None] = [
        _system(s, verbose),
        _nvidia(s.nvidia, verbose),
        _cuda(s.cuda, verbose),
        _tpu(s.tpu, verbose),
        _frameworks(s.frameworks, verbose),
    ]
    if verbose:
        blocks.append(_env(s))
    for b in blocks:
        if b is not None:
            console.print(b)
    if verbose and report.skipped:
        sk = Table(box=box.SIMPLE_HEAD, title="rules skipped for lack of facts", title_justify="left")
        sk.add_column("rule")
        sk.add_column("why")
        for r in report.skipped:
            sk.add_row(r.id, r.reason)
        console.print(sk)
    if verbose and report.timings:
        console.print(
            Text(
                "probe times: "
                + ", ".join(
                    f"{t.name} {t.seconds * 1000:.0f} ms" + ("" if t.status == "ok" else f" ({t.status})")
                    for t in report.timings
                ),
                style="dim",
            )
        )
    verdict = Text()
    if n_err:
        verdict.append(f"{n_err} error{'s' * (n_err != 1)}", style="bold red")
    if n_warn:
        verdict.append((", " if n_err else "") + f"{n_warn} warning{'s' * (n_warn != 1)}", style="yellow")
    if not n_err and not n_warn:
        verdict.append("no problems", style="bold green")
    hint = "  ·  -v for every fact, --markdown to paste into an issue, --json for tools"
    verdict.append(hint, style="dim")
    console.print(verdict)
