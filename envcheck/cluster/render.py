"""The cluster report for people (rich, 80 columns) and for issues (GitHub markdown).

Only layout lives here: the verdicts come from :mod:`envcheck.cluster.aggregate`. Values that are
the same on every node collapse to one line; differing values show each group with its nodes.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from envcheck.cluster.aggregate import names
from envcheck.cluster.models import ClusterReport, CollectiveReport, LayerRow, NodeResult, NodeStatus
from envcheck.markdown import cell
from envcheck.models import Severity

_MARK = {
    Severity.ERROR: ("✗ error", "bold red"),
    Severity.WARNING: ("! warn", "yellow"),
    Severity.INFO: ("i info", "cyan"),
}
_STATUS_STYLE = {NodeStatus.OK: "green"}


def headline(report: ClusterReport) -> str:
    """'ssh · 5 nodes: 3 ok, 1 hung, 1 unreachable · 2 errors, 1 warning · 4.2s'."""
    counts: dict[str, int] = {}
    for n in report.nodes:
        counts[n.status.value] = counts.get(n.status.value, 0) + 1
    status = ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: kv[0] != "ok"))
    errors = sum(1 for f in report.findings if f.severity is Severity.ERROR)
    warnings = sum(1 for f in report.findings if f.severity is Severity.WARNING)
    took = f" · {report.seconds:.1f}s" if report.seconds is not None else ""
    return (
        f"envcheck cluster · {report.engine} · {len(report.nodes)} nodes: {status or 'none'} · "
        f"{errors} errors, {warnings} warnings{took}"
    )


def _value_lines(row: LayerRow, total: int) -> tuple[str, str]:
    if row.median is not None:
        low = row.groups[0] if row.groups else None
        high = row.groups[-1] if row.groups else None
        spread = (
            f"min {low.value} ({low.nodes[0]}), max {high.value} ({high.nodes[0]})" if low and high else ""
        )
        return f"median {row.median:.4g} {row.unit or ''}".strip(), spread
    if len(row.groups) == 1:
        only = row.groups[0]
        return only.value, "all" if len(only.nodes) == total else names(only.nodes)
    return (
        "\n".join(g.value for g in row.groups),
        "\n".join(
            names(g.nodes, limit=6) if i else f"{len(g.nodes)} nodes" for i, g in enumerate(row.groups)
        ),
    )


def _findings(report: ClusterReport) -> RenderableType:
    if not report.findings:
        if not any(n.report for n in report.nodes):
            return Text("no node reported: nothing was checked", style="bold red")
        return Text("✓ every node agrees and no problems found", style="bold green")
    t = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    t.add_column("", no_wrap=True)
    t.add_column("problem", ratio=3, overflow="fold")
    t.add_column("fix", ratio=2, overflow="fold")
    for f in report.findings:
        label, style = _MARK[f.severity]
        what = Text(f.summary)
        what.append(f"\n{f.id}" + (f" · {f.subject}" if f.subject else ""), style="dim")
        fix = Text(f.fix or "")
        for c in f.commands:
            fix.append(("\n" if fix else "") + f"$ {c}", style="bold green")
        t.add_row(Text(label, style=style), what, fix)
    return t


def _nodes(nodes: list[NodeResult]) -> Table:
    t = Table("node", "status", "took", "findings", "why", box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    for n in nodes:
        errs = warns = 0
        if n.report is not None:
            errs = sum(1 for f in n.report.findings if f.severity is Severity.ERROR)
            warns = sum(1 for f in n.report.findings if f.severity is Severity.WARNING)
        took = n.seconds if n.seconds is not None else n.node_seconds
        t.add_row(
            n.name,
            Text(n.status.value, style=_STATUS_STYLE.get(n.status, "bold red")),
            f"{took:.1f}s" if took is not None else "—",
            f"{errs}E {warns}W" if n.report is not None else "—",
            n.reason or "",
        )
    return t


def _layers(report: ClusterReport) -> Table:
    total = sum(1 for n in report.nodes if n.report is not None)
    t = Table("layer", "fact", "value", "nodes", box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    last = None
    for row in report.layers:
        if row.layer == "nodes":
            continue
        value, where = _value_lines(row, total)
        style = "yellow" if row.differs and row.median is None else ""
        t.add_row(row.layer if row.layer != last else "", row.fact, Text(value, style=style), where)
        last = row.layer
    return t


def collective_lines(c: CollectiveReport) -> list[str]:
    """The all-reduce in a few lines: the figure, what it should be, the pairs that point at a node."""
    if c.error and c.busbw_gbps is None:
        return [f"all-reduce across {c.world_size} nodes failed: {c.error}"]
    size = f"{(c.size_bytes or 0) / 2**20:.0f} MiB"
    lines = [f"all-reduce ({c.backend}, {c.world_size} ranks, {size}): bus bandwidth {c.busbw_gbps:.3g} GB/s"]
    if c.interconnect is not None:
        ic = c.interconnect
        if ic.expected_gbps:
            pct = f" → {c.achieved_pct:.0f}% of it" if c.achieved_pct is not None else ""
            lines.append(f"  expected ~{ic.expected_gbps:.3g} GB/s for {ic.kind} ({ic.basis}){pct}")
        else:
            lines.append(f"  expected: unknown ({ic.basis})")
    for p in c.pairs:
        fig = f"{p.busbw_gbps:.3g} GB/s" if p.busbw_gbps is not None else f"failed: {p.error}"
        lines.append(f"  pair {' ↔ '.join(p.nodes)}: {fig}")
    if c.slow_nodes:
        lines.append(f"  the pairs point at: {', '.join(c.slow_nodes)}")
    for a, b in c.slow_links:
        lines.append(f"  slow link: {a} ↔ {b}")
    return lines


def print_cluster(report: ClusterReport, console: Console, *, verbose: bool = False) -> None:
    console.print(Text(headline(report), style="bold"))
    parts: list[RenderableType] = [_findings(report), Text("Nodes", style="bold"), _nodes(report.nodes)]
    if report.layers:
        parts += [
            Text("Layers (same on every node: one line; different: each value with its nodes)", style="bold"),
            _layers(report),
        ]
    if report.collective is not None:
        parts += [Text("Across nodes", style="bold"), Text("\n".join(collective_lines(report.collective)))]
    console.print(Group(*parts))


# --------------------------------------------------------------------------- markdown


def to_markdown(report: ClusterReport) -> str:
    out = [f"### {cell(headline(report))}", ""]
    if report.findings:
        out += ["| | problem | nodes | fix |", "|---|---|---|---|"]
        for f in report.findings:
            mark = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}[f.severity.value]
            out.append(f"| {mark} | {cell(f.summary)} `{f.id}` | {cell(names(f.nodes))} | {cell(f.fix)} |")
    else:
        out.append("✅ every node agrees and no problems found")
    out += ["", "| node | status | took | why |", "|---|---|---|---|"]
    for n in report.nodes:
        took = n.seconds if n.seconds is not None else n.node_seconds
        seconds = f"{took:.1f}s" if took is not None else "—"
        out.append(f"| {cell(n.name)} | {n.status.value} | {seconds} | {cell(n.reason)} |")
    if report.layers:
        out += ["", "| layer | fact | value | nodes |", "|---|---|---|---|"]
        for row in report.layers:
            if row.layer == "nodes":
                continue
            value, where = _value_lines(row, sum(1 for n in report.nodes if n.report is not None))
            out.append(
                f"| {row.layer} | {cell(row.fact)} | {cell(value.replace(chr(10), '; '))} | "
                f"{cell(where.replace(chr(10), '; '))} |"
            )
    if report.collective is not None:
        out += ["", "```", *collective_lines(report.collective), "```"]
    return "\n".join(out) + "\n"
