"""``to_markdown``: a paste-ready issue comment that renders as intended.

The output is rendered with markdown-it-py (CommonMark plus GFM tables, as GitHub renders
comments; it comes with rich) and the HTML is checked, not only the source text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

from markdown_it import MarkdownIt

from envcheck import __version__
from envcheck.ingest import load
from envcheck.markdown import to_markdown
from envcheck.models import SCHEMA_VERSION, Report
from envcheck.redact import redact


class _Tables(HTMLParser):
    """Cells per row of every rendered table, and the text outside tags."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[int]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append(0)
        elif tag in ("td", "th"):
            self.tables[-1][-1] += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def render(md: str) -> _Tables:
    html = MarkdownIt("commonmark").enable("table").render(md)
    parsed = _Tables()
    parsed.feed(html)
    return parsed


def test_verdict_then_findings_with_their_commands(report: Report) -> None:
    md = to_markdown(report)
    first = md.split("\n", 1)[0]
    assert first.startswith("## envcheck: ") and "1 error" in first and "1 warning" in first
    for f in report.findings:
        block = "```bash\n" + "\n".join(f.commands) + "\n```"
        assert block in md
    # errors before warnings, findings before the facts
    assert md.index("cpu-only-wheel") < md.index("small-shm") < md.index("### Key facts")
    assert md.index("### Key facts") < md.index("<details>")
    assert md.count("<details>") == md.count("</details>") >= 1
    assert f"envcheck {__version__}" in md and f"report schema {SCHEMA_VERSION}" in md


def test_renders_as_well_formed_tables(report: Report) -> None:
    html = render(to_markdown(redact(report), verbose=True))
    assert len(html.tables) >= 8
    for rows in html.tables:
        assert len(set(rows)) == 1, f"ragged table: {rows}"
    text = "".join(html.text)
    # placeholders survive rendering instead of being eaten as unknown HTML tags
    assert "<home>/.venv/bin/python" in text and "GPU-<redacted-1>" in text
    assert "/dev/shm is 64 MiB | DataLoader workers may crash" in text  # the pipe in a summary


def test_a_pipe_or_newline_in_a_value_does_not_break_a_table(report: Report) -> None:
    assert report.snapshot.cpu is not None
    report.snapshot.cpu.model = "Weird | CPU\nsecond line"
    html = render(to_markdown(report))
    for rows in html.tables:
        assert len(set(rows)) == 1
    assert "Weird | CPU" in "".join(html.text)


def test_verbose_adds_the_facts_used_and_timings(report: Report) -> None:
    short, long = to_markdown(report), to_markdown(report, verbose=True)
    assert "Facts used" not in short and "Facts used" in long
    assert "Probe timings" in long and "0.084 s" in long
    assert "torch.version" in long  # a fact of the cpu-only-wheel finding


def test_no_findings_and_a_pasted_collect_env(read_fixture: Callable[[str], str]) -> None:
    pasted = load(read_fixture("pytorch-122924_windows11_cpu_wheel_rtx4080.txt"), "issue")
    md = to_markdown(pasted)
    assert md.startswith("## envcheck: ✅ **No problems found**")
    assert "collect_env" in md.split("\n")[2]
    assert "| 0 | NVIDIA GeForce RTX 4080 Laptop GPU |" in md
    assert re.search(r"\| torch \| 2\.2\.2 \| cpu \|", md)
    for rows in render(md).tables:
        assert len(set(rows)) == 1
