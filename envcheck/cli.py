"""``envcheck``: parse options, call the library, render, and map the outcome to an exit code.

Exit codes: 0 no error findings, 1 error findings (or failed checks), 2 usage error,
3 could not run, 130 interrupted. stdout carries data (table, JSON, markdown); stderr messages.
Every option also reads an ``ENVCHECK_*`` environment variable.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # rich loads only when something is drawn: --json output never needs it
    from rich.console import Console

from envcheck import __version__
from envcheck.errors import EnvcheckError, UsageError

app = typer.Typer(
    name="envcheck",
    help="What is wrong with this deep-learning machine, and the command that fixes it.",
    add_completion=False,
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
    bool,
    typer.Option(
        "--redact", help="Hide hostname, user names, home paths, UUIDs and serials.", envvar="ENVCHECK_REDACT"
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

    return Console(highlight=False, soft_wrap=False)


def _emit(
    report_obj: object, *, as_json: bool, markdown: bool, verbose: bool, elapsed: float | None = None
) -> None:
    from envcheck.models import Report

    assert isinstance(report_obj, Report)
    if as_json and markdown:
        raise UsageError("--json and --markdown are exclusive: choose one output format")
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
    redact: RedactOpt = False,
    verbose: VerboseOpt = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.1, help="Seconds any one external call may take.", envvar="ENVCHECK_TIMEOUT"
        ),
    ] = 10.0,
    deep_timeout: Annotated[
        float,
        typer.Option(
            "--deep-timeout",
            min=1,
            help="Seconds each framework's child may take with --deep.",
            envvar="ENVCHECK_DEEP_TIMEOUT",
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
        return
    from envcheck.probes import ProbeContext
    from envcheck.report import check

    start = time.perf_counter()
    if not (as_json or markdown):
        _preload_renderer()
    result = check(ProbeContext(deep=deep, timeout=timeout, deep_timeout=deep_timeout))
    if redact:
        from envcheck.redact import redact as redact_report

        result = redact_report(result)
    if output is not None:
        _save(output, result.model_dump_json(indent=2))
    _emit(result, as_json=as_json, markdown=markdown, verbose=verbose, elapsed=time.perf_counter() - start)
    raise typer.Exit(1 if result.has_errors else 0)


def _save(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text + "\n")
        tmp.replace(path)
    except OSError as exc:
        raise EnvcheckError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _read_input(source: str) -> tuple[str, str]:
    if source == "-":
        return sys.stdin.read(), "<stdin>"
    path = Path(source)
    try:
        return path.read_text(errors="replace"), str(path)
    except FileNotFoundError as exc:
        raise UsageError(f"{source}: no such file") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{source}: is a directory, expected a report file") from exc
    except OSError as exc:
        raise UsageError(f"{source}: cannot read: {exc.strerror or exc}") from exc


@app.command()
def diagnose(
    source: Annotated[
        str, typer.Argument(help="An envcheck JSON report, or PyTorch collect_env output; - for stdin.")
    ],
    as_json: JsonOpt = False,
    markdown: MarkdownOpt = False,
    redact: RedactOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run today's rules on someone else's report (envcheck JSON or a pasted collect_env)."""
    from envcheck.ingest import load
    from envcheck.report import rejudge

    text, origin = _read_input(source)
    result = rejudge(load(text, origin))
    if redact:
        from envcheck.redact import redact as redact_report

        result = redact_report(result)
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

        sys.stdout.write(
            json.dumps([{"id": i, "severity": s, "summary": m} for i, s, m in rows], indent=2) + "\n"
        )
        return
    from rich.table import Table

    table = Table("id", "severity", "what it means", box=None, pad_edge=False)
    for rule_id, severity, summary in rows:
        table.add_row(rule_id, severity, summary)
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


@app.command()
def schema() -> None:
    """Print the JSON Schema of the report that --json writes."""
    import json

    from envcheck.models import Report

    sys.stdout.write(json.dumps(Report.model_json_schema(), indent=2) + "\n")


def _register_extensions() -> None:
    from envcheck.bench import cli as bench_cli
    from envcheck.cluster import cli as cluster_cli
    from envcheck.smoke import cli as smoke_cli

    smoke_cli.register(app)
    bench_cli.register(app)
    cluster_cli.register(app)


_register_extensions()


def _print_error(message: str, hint: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err.print(f"[dim]hint:[/] {escape(hint)}")


def _exit_now(code: object) -> None:
    """Exit without the interpreter's teardown (~10 ms of a ~0.2 s report): output is flushed,
    files were written and closed synchronously, and abandoned probe threads are daemons."""
    status = code if isinstance(code, int) else (0 if code is None else 1)
    if not isinstance(code, int) and code is not None:
        sys.stderr.write(f"{code}\n")
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(status)


def main() -> None:
    """Console-script entry point: EnvcheckError is one line on stderr plus its exit code."""
    try:
        app(standalone_mode=True)
    except SystemExit as done:
        _exit_now(done.code)
    except EnvcheckError as exc:
        if os.environ.get("ENVCHECK_DEBUG"):
            raise
        _print_error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
