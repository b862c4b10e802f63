"""The framework x device x test table of ``envcheck smoke`` (rich), and its one-line summary."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from envcheck.smoke.models import SmokeReport

_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def table(report: SmokeReport) -> Table:
    """One row per test; the last column is what was measured, or why it failed or skipped."""
    t = Table(title="envcheck smoke", title_justify="left", show_lines=False)
    t.add_column("framework")
    t.add_column("device")
    t.add_column("test")
    t.add_column("result")
    t.add_column("time", justify="right")
    t.add_column("detail / error", overflow="fold")
    last = None
    for r in report.results:
        label = r.framework if r.framework != last else ""
        last = r.framework
        device = (
            r.device if not r.device_name or r.device_name == r.device else f"{r.device} ({r.device_name})"
        )
        seconds = "" if r.seconds is None else f"{r.seconds:.2f}s"
        text = r.error if r.status != "pass" else r.detail
        t.add_row(label, device, r.test, Text(r.status, style=_STYLE[r.status]), seconds, text or "")
    return t


def summary(report: SmokeReport) -> str:
    """ "14 passed, 1 failed, 3 skipped in 8.2s" (stderr: stdout is data)."""
    c = report.counts()
    return f"{c['pass']} passed, {c['fail']} failed, {c['skip']} skipped in {report.seconds:.1f}s"


def print_report(report: SmokeReport, console: Console | None = None) -> None:
    """Print the table to stdout."""
    (console or Console(emoji=False)).print(table(report))
