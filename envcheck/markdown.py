"""A report as GitHub markdown, to paste into an issue: verdict, fixes, key facts, details folded.

A reader of the issue sees the verdict and the problems with their commands at once; the
key facts of each layer follow as two-column tables; everything else sits in ``<details>``
blocks so the issue stays short. Every table cell is escaped, so a value with ``|`` or a
newline cannot break the layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from envcheck.models import SCHEMA_VERSION, Finding, Report, Section, Severity
from envcheck.view import Block, Cell, ReportView, build_view

__all__ = ["to_markdown"]

_MARK = {Severity.ERROR: "❌", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}


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


def _table(
    rows: Iterable[tuple[str, Any]], header: tuple[str, str] = ("", ""), *, keep_unknown: bool = False
) -> list[str]:
    body = [f"| {cell(k)} | {cell(v)} |" for k, v in rows if keep_unknown or v not in (None, [], {}, "")]
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


def verdict(view: ReportView) -> str:
    """One line: how many problems of which severity, or that none were found."""
    c = view.counts
    if not (c.errors or c.warnings or c.infos):
        skipped = view.skipped_count
        checked = "" if not skipped else f" ({skipped} checks skipped for missing facts)"
        if view.lacking:
            lacks = ", ".join(what for what, _how in view.lacking)
            return f"✅ **No problems found in what the paste shows**; it lacks {cell(lacks)}"
        return f"✅ **No problems found**{checked}"
    counts = {Severity.ERROR: c.errors, Severity.WARNING: c.warnings, Severity.INFO: c.infos}
    parts = [f"{n} {s.value}{'s' if n != 1 else ''}" for s, n in counts.items() if n]
    worst = Severity.ERROR if c.errors else Severity.WARNING if c.warnings else Severity.INFO
    mark = _MARK[worst]
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


def _cell_text(c: Cell) -> str | None:
    return c.text


def _block(b: Block) -> list[str]:
    out = [f"> **{b.title}** unavailable: {cell(why)}" for why in b.unavailable]
    if out:
        out.append("")
    out += _table(((k, _cell_text(v)) for k, v in b.facts), (f"**{b.title}**", ""), keep_unknown=True)
    for g in b.grids:
        out += _grid(list(g.columns), [[_cell_text(c) for c in row] for row in g.rows])
    if not b.grids and b.empty and not b.unavailable and not b.facts:
        out += [f"*{b.title}: {cell(b.empty)}*", ""]
    out += [f"- {cell(n.text)}" for n in b.notes]
    if b.notes:
        out.append("")
    return out


def _key_facts(view: ReportView) -> list[str]:
    out: list[str] = []
    for b in view.blocks:
        out += _block(b)
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


def _details(report: Report, view: ReportView, verbose: bool) -> list[str]:
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
    if view.timings:
        timings = [[name, f"{seconds:.3f} s", status] for name, seconds, status in view.timings]
        out += ["<details><summary>Probe timings</summary>", "", *_grid(["Probe", "Time", "Status"], timings),
                "</details>", ""]  # fmt: skip
    return out


def to_markdown(report: Report, verbose: bool = False) -> str:
    """``report`` as a GitHub markdown document; ``verbose`` adds each finding's facts and timings."""
    view = build_view(report, verbose=verbose)
    lines = [
        f"## envcheck: {verdict(view)}",
        "",
        f"<sub>Facts from {cell(view.source)} · report of {cell(view.created_at)}</sub>",
        "",
    ]
    if view.findings:
        lines += ["### Problems and fixes", ""]
        for f in view.findings:
            lines += _finding(f, verbose)
    if view.hidden_notes:
        lines += [f"<sub>+ {view.hidden_notes} notes (envcheck -v shows them)</sub>", ""]
    lines += _key_facts(view)
    lines += _details(report, view, verbose)
    schema = cell(view.schema_version)
    if view.schema_version != SCHEMA_VERSION:
        schema += f" (this envcheck writes {SCHEMA_VERSION})"
    lines += ["", "---", "", f"<sub>envcheck {cell(view.tool_version)} · report schema {schema}</sub>", ""]
    return "\n".join(lines)
