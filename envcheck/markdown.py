"""A report as GitHub markdown, to paste into an issue: verdict, fixes, key facts, details folded.

A reader of the issue sees the verdict and the problems with their commands at once; the
key facts of each layer follow as two-column tables; everything else sits in ``<details>``
blocks so the issue stays short. Every table cell is escaped, so a value with ``|`` or a
newline cannot break the layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from envcheck.knowledge._version import cuda_text
from envcheck.models import (
    SCHEMA_VERSION,
    CpuInfo,
    CudaInfo,
    Finding,
    FrameworksInfo,
    MemoryInfo,
    NvidiaInfo,
    Report,
    Section,
    Severity,
    Snapshot,
    SystemInfo,
    TpuInfo,
)

__all__ = ["to_markdown"]

_MARK = {Severity.ERROR: "❌", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}
_SOURCE = {
    "probe": "this machine",
    "collect_env": "pasted collect_env output",
    "envcheck-json": "a saved report",
}


def cell(value: Any) -> str:
    """One table cell: None as an em dash, lists joined, ``|``, ``<``, ``>`` and newlines escaped."""
    if value is None or value in ([], {}):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        text = ", ".join(cell(v) for v in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    else:
        text = str(value)
    # GitHub drops unknown HTML tags, so placeholders like <home> must be entities
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def _table(rows: Iterable[tuple[str, Any]], header: tuple[str, str] = ("", "")) -> list[str]:
    body = [f"| {cell(k)} | {cell(v)} |" for k, v in rows if v not in (None, [], {}, "")]
    if not body:
        return []
    return [f"| {header[0]} | {header[1]} |", "|---|---|", *body, ""]


def _grid(header: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return []
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows),
        "",
    ]


def _gib(n: int | None) -> str | None:
    return None if n is None else f"{n / 2**30:.1f} GiB"


def _cuda_int(v: int | None) -> str | None:
    if v is None:
        return None
    return cuda_text(v) or "none (0)"


def verdict(report: Report) -> str:
    """One line: how many problems of which severity, or that none were found."""
    counts = {s: sum(1 for f in report.findings if f.severity is s) for s in Severity}
    if not report.findings:
        checked = "" if not report.skipped else f" ({len(report.skipped)} checks skipped for missing facts)"
        return f"✅ **No problems found**{checked}"
    parts = [f"{counts[s]} {s.value}{'s' if counts[s] != 1 else ''}" for s in Severity if counts[s]]
    mark = _MARK[Severity.ERROR] if counts[Severity.ERROR] else _MARK[Severity.WARNING]
    if not counts[Severity.ERROR] and not counts[Severity.WARNING]:
        mark = _MARK[Severity.INFO]
    return f"{mark} **{', '.join(parts)}**"


def _finding(f: Finding, verbose: bool) -> list[str]:
    subject = f" ({cell(f.subject)})" if f.subject else ""
    out = [f"#### {_MARK[f.severity]} `{f.id}`{subject}", "", cell(f.summary).replace("<br>", " "), ""]
    if f.fix:
        out += [f"**Fix:** {cell(f.fix).replace('<br>', ' ')}", ""]
    if f.commands:
        out += ["```bash", *f.commands, "```", ""]
    if verbose and f.facts:
        out += ["<details><summary>Facts used</summary>", "", *_table(f.facts.items(), ("fact", "value")),
                "</details>", ""]  # fmt: skip
    return out


# --------------------------------------------------------------------------- key facts


def _system_rows(s: SystemInfo) -> list[tuple[str, Any]]:
    py = s.python
    c = s.container
    where = None
    if c is not None:
        where = (
            ", ".join(
                x for x in (c.runtime, "Kubernetes" if c.kubernetes else None, "WSL2" if c.wsl else None) if x
            )
            or None
        )
    return [
        ("OS", " · ".join(x for x in (s.distro or s.os, s.arch) if x) or None),
        ("Kernel", s.kernel),
        ("glibc", s.glibc),
        (
            "Python",
            " ".join(x for x in (py.version, f"({py.kind})" if py.kind else None) if x) if py else None,
        ),
        ("Container", where),
    ]


def _cpu_rows(c: CpuInfo) -> list[tuple[str, Any]]:
    topo = None
    if c.cores or c.threads:
        topo = f"{c.sockets or '?'} socket(s), {c.cores or '?'} cores, {c.threads or '?'} threads"
    return [("Model", c.model), ("Topology", topo), ("ISA", c.flags), ("NUMA nodes", c.numa_nodes)]


def _memory_rows(m: MemoryInfo) -> list[tuple[str, Any]]:
    return [
        (
            "RAM",
            f"{_gib(m.total_bytes)} total, {_gib(m.available_bytes) or '—'} available"
            if m.total_bytes
            else None,
        ),
        ("Swap", _gib(m.swap_total_bytes)),
        ("/dev/shm", _gib(m.shm_total_bytes)),
    ]


def _nvidia_lines(n: NvidiaInfo) -> list[str]:
    rows = [
        ("Driver", n.driver_version),
        ("Highest CUDA the driver supports", _cuda_int(n.cuda_driver_version)),
        (
            "NVML",
            None if n.nvml is None else ("ok" if n.nvml.ok else f"failed: {n.nvml.name or n.nvml.message}"),
        ),
        ("Kernel module", None if n.kernel_module is None else n.kernel_module.version),
    ]
    out = _table(rows, ("**NVIDIA**", ""))
    gpus = [
        [g.index, g.name, g.compute_capability,
         f"{g.memory_total_mib} MiB" if g.memory_total_mib else None,
         f"gen {g.pcie.gen_current} x{g.pcie.width_current}" if g.pcie and g.pcie.gen_current else None,
         g.bus_id]
        for g in n.gpus or []
    ]  # fmt: skip
    return out + _grid(["GPU", "Name", "Compute cap.", "Memory", "PCIe", "Bus id"], gpus)


def _cuda_lines(c: CudaInfo) -> list[str]:
    rows = [
        ("CUDA runtime", _cuda_int(c.runtime_version)),
        ("CUDA driver API", _cuda_int(c.driver_version)),
        ("nvcc", c.nvcc_version),
        ("CUDA_HOME", c.cuda_home),
        ("Toolkits", [f"{t.path} ({t.version})" if t.version else t.path for t in c.toolkits or []]),
    ]
    libs = [[lib.name, lib.version, lib.origin, lib.path or lib.error] for lib in c.libraries or []]
    return _table(rows, ("**CUDA**", "")) + _grid(["Library", "Version", "From", "File"], libs)


def _framework_lines(fi: FrameworksInfo) -> list[str]:
    rows = []
    for f in fi.frameworks:
        if not f.installed:
            rows.append([f.name, "not installed", None, None, None, None])
            continue
        gpu: Any = None
        if f.deep is not None:
            if not f.deep.ok:
                gpu = f.deep.error
            elif f.deep.device_count is not None:
                gpu = f"{f.deep.device_count} device(s)"
            else:
                gpu = f.deep.gpu_available
        build = f.build
        if f.cuda_build:
            build = f"{f.build} {f.cuda_build}"
        elif f.rocm_build:
            build = f"{f.build} {f.rocm_build}"
        rows.append([f.name, f.version, build, f.cudnn_build, gpu, f.error])
    return _grid(["Framework", "Version", "Build", "cuDNN", "GPU seen", "Problem"], rows)


def _tpu_rows(t: TpuInfo) -> list[tuple[str, Any]]:
    return [
        ("Generation", t.generation),
        ("Devices", t.accel_nodes or t.vfio_nodes),
        ("libtpu", t.libtpu_version),
    ]


def _key_facts(s: Snapshot) -> list[str]:
    sections: list[tuple[str, Section | None, Any]] = [
        ("System", s.system, lambda x: _table(_system_rows(x), ("**System**", ""))),
        ("CPU", s.cpu, lambda x: _table(_cpu_rows(x), ("**CPU**", ""))),
        ("Memory", s.memory, lambda x: _table(_memory_rows(x), ("**Memory**", ""))),
        ("NVIDIA", s.nvidia, _nvidia_lines),
        ("CUDA", s.cuda, _cuda_lines),
        ("TPU", s.tpu, lambda x: _table(_tpu_rows(x), ("**TPU**", ""))),
        ("Frameworks", s.frameworks, _framework_lines),
    ]
    out: list[str] = []
    for title, section, render in sections:
        if section is None:
            continue
        body = render(section)
        if section.error:
            body = [f"> **{title}** unavailable: {cell(section.error)}", "", *body]
        out += body
    return ["### Key facts", "", *out] if out else []


# --------------------------------------------------------------------------- details


def _flatten(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Dotted paths to every known leaf (lists of scalars stay whole)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}[{i}]")
    elif value not in (None, [], {}, ""):
        yield prefix, value


def _details(report: Report, verbose: bool) -> list[str]:
    tables: list[str] = []
    for name in report.snapshot.__struct_fields__:
        section = getattr(report.snapshot, name)
        if isinstance(section, Section):
            rows = list(_flatten(section.model_dump(mode="json", exclude_none=True)))
            tables += _table(rows, (f"**{name}**", ""))
    out = ["<details><summary>All facts</summary>", "", *tables, "</details>", ""] if tables else []
    if report.skipped:
        skipped = [(s.id, s.reason) for s in report.skipped]
        out += [f"<details><summary>{len(skipped)} checks skipped for missing facts</summary>", "",
                *_table(skipped, ("Check", "Why skipped")), "</details>", ""]  # fmt: skip
    if verbose and report.timings:
        timings = [[t.name, f"{t.seconds:.3f} s", t.status] for t in report.timings]
        out += ["<details><summary>Probe timings</summary>", "", *_grid(["Probe", "Time", "Status"], timings),
                "</details>", ""]  # fmt: skip
    return out


def to_markdown(report: Report, verbose: bool = False) -> str:
    """``report`` as a GitHub markdown document; ``verbose`` adds each finding's facts and timings."""
    source = _SOURCE.get(report.snapshot.source, report.snapshot.source)
    lines = [
        f"## envcheck: {verdict(report)}",
        "",
        f"<sub>Facts from {source} · report of {cell(report.created_at)}</sub>",
        "",
    ]
    findings = sorted(report.findings, key=lambda f: f.severity.rank)
    if findings:
        lines += ["### Problems and fixes", ""]
        for f in findings:
            lines += _finding(f, verbose)
    lines += _key_facts(report.snapshot)
    lines += _details(report, verbose)
    schema = cell(report.schema_version)
    if report.schema_version != SCHEMA_VERSION:
        schema += f" (this envcheck writes {SCHEMA_VERSION})"
    lines += ["", "---", "", f"<sub>envcheck {cell(report.tool_version)} · report schema {schema}</sub>", ""]
    return "\n".join(lines)
