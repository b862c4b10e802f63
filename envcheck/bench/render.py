"""The ``envcheck bench`` table: each figure, its spread, the peak it is set against, the percentage."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from envcheck.bench.models import BenchReport, Figure


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "TFLOPS":
        return f"{value:.3g} TFLOPS" if value >= 1 else f"{value * 1000:.3g} GFLOPS"
    if unit == "x":
        return f"{value:.3g}x"
    return f"{value:.3g} {unit}"


def _what(f: Figure) -> str:
    names = {"matmul": "matmul", "copy": "memory copy", "triad": "memory triad", "h2d": "host->device",
             "d2h": "device->host", "speedup": "GPU/CPU speedup"}  # fmt: skip
    base = names.get(f.metric, f.metric)
    return f"{base} {f.dtype}" if f.dtype and f.metric == "matmul" else base


def _pct_text(pct: float | None) -> Text:
    if pct is None:
        return Text("")
    style = "green" if pct >= 60 else "yellow" if pct >= 30 else "red"
    return Text(f"{pct:.0f}%", style=style)


def _unmeasured(report: BenchReport) -> list[Figure]:
    return [f for f in report.figures if f.error or f.skipped]


def table(report: BenchReport) -> Table:
    """One row per figure; narrow enough for 80 columns (a skip or error spans the number columns)."""
    title = f"envcheck bench ({report.mode}, {report.backend} {report.backend_version or ''}".strip() + ")"
    t = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("device", "figure", "size"):
        t.add_column(col, overflow="fold")
    for col in ("median", "±", "peak", "of peak"):
        t.add_column(col, justify="right", no_wrap=True)
    numbers = {id(f): i for i, f in enumerate(_unmeasured(report), start=1)}
    for f in report.figures:
        if f.error or f.skipped:
            i = numbers[id(f)]
            mark = Text(f"error [{i}]", style="red") if f.error else Text(f"skipped [{i}]", style="dim")
            t.add_row(Text(f.device), Text(_what(f)), Text(f.size or ""), mark, "", "", "")
            continue
        spread = "" if f.spread_pct is None else f"{f.spread_pct / 2:.0f}%"
        t.add_row(Text(f.device), Text(_what(f)), Text(f.size or ""), _num(f.median, f.unit), spread,
                  _num(f.peak, f.unit) if f.peak else "?", _pct_text(f.achieved_pct))  # fmt: skip
    return t


def print_report(report: BenchReport, console: Console | None = None) -> None:
    """The table, then how each peak was obtained (the CPU formula, GPU spec rows, links)."""
    out = console or Console(highlight=False, emoji=False)
    out.print(table(report))
    for i, f in enumerate(_unmeasured(report), start=1):
        style = "red" if f.error else "dim"
        out.print(Text(f"[{i}] {f.device} {_what(f)}: {f.error or f.skipped}", style=style))
    out.print(Text(f"CPU peak: {report.cpu_peak}" if report.cpu_peak else "CPU peak: unknown"))
    for d in report.devices:
        if d.device.startswith("gpu"):
            parts = [
                p
                for p in (
                    d.name,
                    f"PCIe {d.pcie}" if d.pcie else None,
                    f"spec: {d.spec}" if d.spec else "not in the GPU knowledge base",
                )
                if p
            ]
            out.print(Text(f"{d.device}: " + "; ".join(parts)))
    repeats = max((f.repeats or 0) for f in report.figures) if report.figures else 0
    out.print(
        Text(f"median of up to {repeats} timed samples after warm-up; ± = half their interquartile range")
    )
    for note in report.notes:
        out.print(Text(f"note: {note}", style="yellow"))
    if report.error:
        out.print(Text(f"benchmark child failed: {report.error}", style="bold red"))
