"""The framework x device x test table of ``envcheck smoke`` (rich), and its one-line summary."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from envcheck.smoke.models import SmokeReport

_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def table(report: SmokeReport) -> Table:
    """One row per test; the last column is what was measured, or why it failed or skipped.

    Narrow enough for 80 columns: device names are listed once below the table (``names``),
    and every value is plain text (an error message with ``[brackets]`` is not markup)."""
    t = Table(title=Text("envcheck smoke"), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("framework", no_wrap=True)
    t.add_column("device", no_wrap=True)
    t.add_column("test", no_wrap=True)
    t.add_column("result", no_wrap=True)
    t.add_column("time", justify="right", no_wrap=True)
    t.add_column("detail / error", overflow="fold", ratio=1)
    last = None
    for r in report.results:
        label = r.framework if r.framework != last else ""
        last = r.framework
        seconds = "" if r.seconds is None else f"{r.seconds:.2f}s"
        text = r.error if r.status != "pass" else r.detail
        t.add_row(
            Text(label), Text(r.device), Text(r.test), Text(r.status, style=_STYLE[r.status]), seconds,
            Text(text or ""),
        )  # fmt: skip
    return t


def names(report: SmokeReport) -> list[str]:
    """ "gpu:0 = NVIDIA A100-SXM4-80GB", once per device that has a name of its own."""
    seen: dict[str, str] = {}
    for r in report.results:
        if r.device_name and r.device_name != r.device:
            seen.setdefault(r.device, r.device_name)
    return [f"{device} = {name}" for device, name in seen.items()]


def summary(report: SmokeReport) -> str:
    """ "14 passed, 1 failed, 3 skipped in 8.2s" (stderr: stdout is data)."""
    c = report.counts()
    return f"{c['pass']} passed, {c['fail']} failed, {c['skip']} skipped in {report.seconds:.1f}s"


def print_report(report: SmokeReport, console: Console | None = None) -> None:
    """Print the table to stdout, then the devices' names."""
    out = console or Console(emoji=False)
    out.print(table(report))
    for line in names(report):
        out.print(Text(line, style="dim"))
