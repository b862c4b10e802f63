"""Rich panels for people: problems first, then the key facts layer by layer; ``-v`` shows all.

Layout only: which facts are shown and how each is formatted comes from ``envcheck.view``
(shared with the markdown output), and every emphasis comes from a rule's finding. Every value
is a ``Text``, never markup, so a hostname or a path like ``[red]`` prints as itself.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from envcheck.models import Finding, Report, Severity
from envcheck.view import Block, Cell, Counts, Grid, ReportView, build_view, fmt_bytes, fmt_cuda

__all__ = ["findings_table", "fmt_bytes", "fmt_cuda", "headline", "render_report"]

_SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_SEVERITY_MARK = {Severity.ERROR: "✗ error", Severity.WARNING: "! warning", Severity.INFO: "i info"}
_TONE_STYLE = {"plain": "", "dim": "dim", "warn": "yellow", "bad": "red"}


def _text(cell: Cell) -> Text:
    if cell.text is None:
        return Text("—", style="dim")
    return Text(cell.text, style=_TONE_STYLE[cell.tone])


def _facts(rows: list[tuple[str, Cell]]) -> Table:
    grid = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(Text(key), _text(value))
    return grid


def _grid(g: Grid) -> Table:
    t = (
        Table(box=box.MINIMAL, title=Text(g.title), title_justify="left")
        if g.title
        else Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    )
    for col in g.columns:
        t.add_column(Text(col), overflow="fold")
    for row in g.rows:
        t.add_row(*(_text(c) for c in row))
    return t


def _block(b: Block) -> Panel:
    parts: list[RenderableType] = [Text(f"unavailable: {why}", style="red") for why in b.unavailable]
    if b.facts:
        parts.append(_facts(b.facts))
    parts += [_grid(g) for g in b.grids]
    if not b.grids and b.empty and not b.unavailable:
        parts.append(Text(b.empty, style="dim"))
    parts += [Text(f"  {n.text}", style=_TONE_STYLE[n.tone]) for n in b.notes]
    return Panel(Group(*parts), title=Text(b.title, style="bold"), title_align="left", padding=(0, 1))


def findings_table(
    findings: list[Finding], hidden_notes: int = 0, lacking: list[tuple[str, str]] | None = None
) -> RenderableType:
    """The problems with their fixes and commands; a green line when there are none, and for a
    paste that holds too little to judge, what it lacks and how to get it instead."""
    if not findings:
        notes = f" ({hidden_notes} notes: -v shows them)" if hidden_notes else ""
        if lacking:
            parts: list[RenderableType] = [
                Text(f"✓ nothing wrong in what the paste shows{notes}, but it lacks:", style="bold yellow")
            ]
            parts += [Text(f"  - {what}: {how.replace('`', '')}") for what, how in lacking]
            return Group(*parts)
        return Text(f"✓ no problems found{notes}", style="bold green")
    table = Table(box=box.SIMPLE_HEAD, show_lines=False, expand=True)
    table.add_column("", no_wrap=True)
    table.add_column("problem", ratio=3, overflow="fold")
    table.add_column("fix", ratio=4, overflow="fold")
    for f in findings:
        summary = Text(f.summary)
        summary.append(f"\n{f.id}" + (f" · {f.subject}" if f.subject else ""), style="dim")
        fix = Text(f.fix or "")
        for cmd in f.commands:
            fix.append(("\n" if fix else "") + f"$ {cmd}", style="bold green")
        table.add_row(Text(_SEVERITY_MARK[f.severity], style=_SEVERITY_STYLE[f.severity]), summary, fix)
    if hidden_notes:
        return Group(table, Text(f"  + {hidden_notes} notes (-v shows them)", style="dim"))
    return table


def headline(c: Counts) -> Text:
    """'2 errors, 1 warning' or 'no problems' (a report with an error finding never says that)."""
    verdict = Text()
    if c.errors:
        verdict.append(f"{c.errors} error{'s' * (c.errors != 1)}", style="bold red")
    if c.warnings:
        sep = ", " if c.errors else ""
        verdict.append(f"{sep}{c.warnings} warning{'s' * (c.warnings != 1)}", style="yellow")
    if not c.problems:
        verdict.append("no problems", style="bold green")
    return verdict


def _footer(view: ReportView, console: Console) -> None:
    if view.skipped:
        sk = Table(box=box.SIMPLE_HEAD, title="rules skipped for lack of facts", title_justify="left")
        sk.add_column("rule")
        sk.add_column("why")
        for rule_id, reason in view.skipped:
            sk.add_row(Text(rule_id), Text(reason))
        console.print(sk)
    if view.timings:
        times = ", ".join(
            f"{name} {seconds * 1000:.0f} ms" + ("" if status == "ok" else f" ({status})")
            for name, seconds, status in view.timings
        )
        console.print(Text(f"probe times: {times}", style="dim"))


def render_report(
    report: Report, console: Console, *, verbose: bool = False, elapsed: float | None = None
) -> None:
    """Print ``report`` for a person: verdict and fixes first, then the facts, layer by layer."""
    view = build_view(report, verbose)
    origin = "" if view.source == "this machine" else f" · facts from {view.source}"
    took = f" · {elapsed:.2f} s" if elapsed is not None else ""
    console.print(Text(f"envcheck {view.tool_version}{origin}{took}", style="bold"))
    console.print(findings_table(view.findings, view.hidden_notes, view.lacking))
    for b in view.blocks:
        console.print(_block(b))
    _footer(view, console)
    verdict = headline(view.counts)
    if view.lacking and not view.counts.problems:
        lacks = f" in the paste (it lacks {len(view.lacking)} of the facts a verdict needs)"
        verdict.append(lacks, style="yellow")
    verdict.append("  ·  -v for every fact, --markdown to paste into an issue, --json for tools", style="dim")
    console.print(verdict)
