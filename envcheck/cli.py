"""``envcheck``: parse options, call the library, render, and map the outcome to an exit code.

Exit codes: 0 no error findings, 1 error findings (or failed checks), 2 usage error,
3 could not run, 130 interrupted (143 SIGTERM, 129 SIGHUP). stdout carries data (table, JSON,
markdown); stderr messages. Every option (but --help, --version and completion) also reads the
``ENVCHECK_*`` environment variable its help names.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # rich loads only when something is drawn: --json output never needs it
    from rich.console import Console

    from envcheck.models import Report

from envcheck import __version__
from envcheck.clirun import bounded
from envcheck.errors import EnvcheckError, UsageError

#: the longest any timeout option may be: a day (larger values overflow the OS's wait calls)
MAX_SECONDS = 86400.0

app = typer.Typer(
    name="envcheck",
    help="What is wrong with this deep-learning machine, and the command that fixes it.",
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print the report as JSON (schema_version inside).", envvar="ENVCHECK_JSON"),
]
MarkdownOpt = Annotated[
    bool,
    typer.Option(
        "--markdown", help="Print GitHub markdown to paste into an issue.", envvar="ENVCHECK_MARKDOWN"
    ),
]
RedactOpt = Annotated[
    bool | None,
    typer.Option(
        "--redact/--no-redact",
        help="Hide hostname, user names, home paths, UUIDs and serials (default: on with --markdown).",
        envvar="ENVCHECK_REDACT",
        show_default=False,
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="Show every fact, notes and skipped rules.", envvar="ENVCHECK_VERBOSE"
    ),
]


def _out() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, emoji=False)


def _redacted(report_obj: Report, redact: bool | None, markdown: bool) -> Report:
    """``--markdown`` is for public issues, so it hides identities unless ``--no-redact``."""
    if redact or (redact is None and markdown):
        from envcheck.redact import redact as redact_report

        return redact_report(report_obj, home=os.environ.get("HOME"))
    return report_obj


def _emit(
    report_obj: Report, *, as_json: bool, markdown: bool, verbose: bool, elapsed: float | None = None
) -> None:
    if as_json:
        sys.stdout.write(report_obj.model_dump_json(indent=2) + "\n")
    elif markdown:
        from envcheck.markdown import to_markdown

        sys.stdout.write(to_markdown(report_obj, verbose=verbose))
    else:
        from envcheck.render import render_report

        render_report(report_obj, _out(), verbose=verbose, elapsed=elapsed)


def _preload_renderer() -> None:
    """Import rich's tables while the probes wait on the machine (child processes, commands)."""
    import threading

    def load() -> None:
        import envcheck.render  # noqa: F401

    threading.Thread(target=load, name="load-renderer", daemon=True).start()


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"envcheck {__version__}\n")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def report(
    ctx: typer.Context,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Also import each framework in its own child interpreter, in parallel: "
            "the devices it sees and the CUDA libraries it loads.",
            envvar="ENVCHECK_DEEP",
        ),
    ] = False,
    as_json: JsonOpt = False,
    markdown: MarkdownOpt = False,
    redact: RedactOpt = None,
    verbose: VerboseOpt = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="Seconds any one external call may take (0.1 to 86400).",
            envvar="ENVCHECK_TIMEOUT",
            callback=bounded(0.1, MAX_SECONDS),
        ),
    ] = 10.0,
    deep_timeout: Annotated[
        float,
        typer.Option(
            "--deep-timeout",
            help="Seconds each framework's child may take with --deep (1 to 86400).",
            envvar="ENVCHECK_DEEP_TIMEOUT",
            callback=bounded(1.0, MAX_SECONDS),
        ),
    ] = 120.0,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Also save the JSON report to this file (for diagnose / diff).",
            envvar="ENVCHECK_OUTPUT",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Report this machine: system, CPU, memory, NVIDIA (PCI to NVML), CUDA libraries, TPU, frameworks.

    Problems come first, each with the command that fixes it.
    """
    if ctx.invoked_subcommand is not None:
        import gc

        gc.enable()  # the entry point switched it off for the short report; subcommands run long
        return
    _exclusive(as_json, markdown)
    from envcheck.probes import ProbeContext
    from envcheck.report import check

    start = time.perf_counter()
    if not (as_json or markdown):
        _preload_renderer()
    if output is not None:
        _check_output(output)
    with _deep_progress(deep) as progress:
        result = check(
            ProbeContext(deep=deep, timeout=timeout, deep_timeout=deep_timeout, on_progress=progress)
        )
    result = _redacted(result, redact, markdown)
    if output is not None:
        _save(output, result.model_dump_json(indent=2))
    _emit(result, as_json=as_json, markdown=markdown, verbose=verbose, elapsed=time.perf_counter() - start)
    raise typer.Exit(1 if result.has_errors else 0)


def _exclusive(as_json: bool, markdown: bool) -> None:
    if as_json and markdown:
        raise UsageError("--json and --markdown are exclusive: choose one output format")


def _deep_progress(enabled: bool) -> Any:
    """A live line on a terminal's stderr while --deep's children import their frameworks."""
    if not enabled:
        return contextlib.nullcontext(None)
    from envcheck.progress import LiveProgress

    return LiveProgress("envcheck --deep")


def _check_output(path: Path) -> None:
    """Fail before probing, not after, when -o names a place we cannot write."""
    from envcheck.userfiles import WriteFailed, check_writable

    try:
        check_writable(path)
    except WriteFailed as exc:
        raise UsageError(str(exc)) from None


def _save(path: Path, text: str) -> None:
    """Through symlinks, into devices and pipes as ``>`` would; atomic for regular files."""
    from envcheck.userfiles import WriteFailed, write_text

    try:
        write_text(path, text + "\n")
    except WriteFailed as exc:
        raise EnvcheckError(str(exc)) from None


#: a report or an issue body is kilobytes; more than this is read up to here
_MAX_INPUT = 16 * 2**20


def _read_input(source: str) -> tuple[bytes, str]:
    """The raw bytes (decoded by ``envcheck.ingest``: UTF-16 from PowerShell, BOMs, stray bytes)."""
    if source == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # started with stdin closed (`<&-`)
            raise UsageError("- means stdin, but stdin is closed")
        try:
            return stream.read(_MAX_INPUT), "<stdin>"
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read stdin: {getattr(exc, 'strerror', None) or exc}") from None
    path = Path(source)
    try:
        with path.open("rb") as fh:  # bounded: /dev/zero or a multi-GB log is not read whole
            return fh.read(_MAX_INPUT), str(path)
    except FileNotFoundError as exc:
        raise UsageError(f"{source}: no such file") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{source}: is a directory, expected a report file") from exc
    except OSError as exc:
        raise UsageError(f"{source}: cannot read: {exc.strerror or exc}") from exc


@app.command()
def diagnose(
    source: Annotated[
        str,
        typer.Argument(
            help="An envcheck JSON report, or pasted text (collect_env, nvidia-smi, pip list, error lines, a "
            "whole issue body); - for stdin."
        ),
    ],
    as_json: JsonOpt = False,
    markdown: MarkdownOpt = False,
    redact: RedactOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run today's rules on someone else's report: envcheck JSON, or any pasted dump, log or issue body.

    With --markdown a pasted report gets a reply a maintainer can post: verdicts, the lines and
    facts they rest on, the fix, and what the paste lacks.
    """
    _exclusive(as_json, markdown)
    from envcheck.ingest import load
    from envcheck.report import rejudge

    text, origin = _read_input(source)
    result = _redacted(rejudge(load(text, origin)), redact, markdown)
    if markdown and not as_json and result.snapshot.paste is not None:
        from envcheck.reply import to_reply  # a pasted report gets a reply a maintainer can post

        sys.stdout.write(to_reply(result))
    else:
        _emit(result, as_json=as_json, markdown=markdown, verbose=verbose)
    raise typer.Exit(1 if result.has_errors else 0)


@app.command()
def diff(
    before: Annotated[str, typer.Argument(help="The older report (envcheck JSON or collect_env text).")],
    after: Annotated[str, typer.Argument(help="The newer report.")],
    as_json: JsonOpt = False,
) -> None:
    """Show what changed between two reports: versions, GPUs, findings that appeared or went away."""
    from envcheck.diff import diff_reports, render_diff
    from envcheck.ingest import load
    from envcheck.report import rejudge

    a = rejudge(load(*_read_input(before)))
    b = rejudge(load(*_read_input(after)))
    result = diff_reports(a, b)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        render_diff(result, _out())


@app.command("rules")
def list_rules(
    as_json: JsonOpt = False,
    knowledge: Annotated[
        bool,
        typer.Option(
            "--knowledge",
            help="Show the version tables the rules use instead: age, newest release covered.",
            envvar="ENVCHECK_KNOWLEDGE",
        ),
    ] = False,
) -> None:
    """List every rule id envcheck can report, with its severity and meaning."""
    if knowledge:
        _knowledge_tables(as_json)
        return
    from envcheck.rules import catalog

    rows = catalog()
    if as_json:
        import json

        from envcheck.models import SCHEMA_VERSION

        doc = {
            "schema_version": SCHEMA_VERSION,
            "rules": [{"id": i, "severity": s, "summary": m} for i, s, m in rows],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table("id", "severity", "what it means", box=None, pad_edge=False)
    for rule_id, severity, summary in rows:
        table.add_row(Text(rule_id), Text(severity), Text(summary))
    _out().print(table)


def _knowledge_tables(as_json: bool) -> None:
    """``envcheck rules --knowledge``: each table's rows, age and reach; stale ones flagged."""
    import dataclasses
    import json

    from envcheck.knowledge import coverage

    ages = coverage.tables()
    if as_json:
        out = [dataclasses.asdict(a) | {"stale": a.stale} for a in ages]
        sys.stdout.write(json.dumps({"schema_version": "1.0", "tables": out}, indent=2) + "\n")
        return
    from rich.table import Table

    table = Table("table", "rows", "read", "age", "newest", "from wheels", box=None, pad_edge=False)
    for a in ages:
        age = f"[yellow]{a.age_days} d (stale)[/]" if a.stale else f"{a.age_days} d"
        table.add_row(a.name, str(a.rows), a.newest_as_of, age, a.newest, f"{a.from_artifacts}/{a.rows}")
    console = _out()
    console.print(table)
    for a in ages:
        if a.unreachable:
            console.print(f"{a.name}: could not read {a.unreachable}", markup=False)
    console.print("Refresh the generated tables: python scripts/refresh_knowledge.py --write", markup=False)


class SchemaOf(str, Enum):
    report = "report"
    smoke = "smoke"
    bench = "bench"


@app.command()
def schema(
    of: Annotated[
        SchemaOf,
        typer.Option(
            "--for",
            help="Whose JSON: report (envcheck --json), smoke or bench.",
            envvar="ENVCHECK_SCHEMA_FOR",
        ),
    ] = SchemaOf.report,
) -> None:
    """Print the JSON Schema (draft 2020-12) of what --json writes."""
    import json

    from envcheck.schemas import json_schema

    sys.stdout.write(json.dumps(json_schema(of.value), indent=2) + "\n")


def _register_extensions() -> None:
    from envcheck.bench import cli as bench_cli
    from envcheck.cluster import cli as cluster_cli
    from envcheck.smoke import cli as smoke_cli

    smoke_cli.register(app)
    bench_cli.register(app)
    cluster_cli.register(app)


_register_extensions()


def main() -> None:
    """Console-script entry point: one-line errors, exit codes, children killed on the way out."""
    from envcheck.clirun import run

    run(app, prog="envcheck", errors=(EnvcheckError,), debug_var="ENVCHECK_DEBUG", fast_exit=True)
