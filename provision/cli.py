"""``provision``: the typer app; each command group lives in its own module under commands/.

Exit codes: 0 done, 1 a check failed (image test, stack mismatch), 2 usage error, 3 could not
run (no engine, no credentials, a cloud refused), 130 interrupted (143 SIGTERM, 129 SIGHUP).
``PROVISION_DEBUG=1`` shows the traceback behind any error. The options of ``image``, ``up``,
``ls``, ``ssh``, ``down`` and ``gc`` also read the environment variable their help names.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from provision.commands._lazy import LazyGroup
from provision.errors import ProvisionError


class _Commands(LazyGroup):
    # name -> the module whose register(app) adds it, in --help order (commands, then groups)
    sources = {
        **dict.fromkeys(("gpus", "cost", "rig"), "provision.commands.pricing"),
        **dict.fromkeys(("up", "ls", "ssh", "exec", "down", "gc"), "provision.commands.cloud"),
        "catalog": "provision.commands.pricing",
        "image": "provision.commands.images",
    }


app = typer.Typer(
    cls=_Commands,
    name="provision",
    help="Build CUDA images, launch cloud GPU/TPU machines, price jobs and plan workstations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        from envcheck import __version__

        try:
            installed = version("mlrig")
        except PackageNotFoundError:
            installed = __version__
        sys.stdout.write(f"provision {installed} (mlrig)\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Build CUDA images, launch cloud GPU/TPU machines, price jobs and plan workstations."""


def _offline(argv: list[str]) -> bool:
    """True for the offline pricing commands: they read local files and print, start no thread or
    child and leave no file open, so the interpreter's teardown (~20 ms of `gpus`) can be skipped."""
    words = [a for a in argv if not a.startswith("-")]  # the root's options are all flags
    return words[:1] in (["gpus"], ["cost"], ["rig"]) or (words[:1] == ["catalog"] and "refresh" not in words)


def main() -> None:
    """Console-script entry point: one-line errors, exit codes, PROVISION_DEBUG=1 for tracebacks."""
    from envcheck.clirun import run

    run(
        app,
        prog="provision",
        errors=(ProvisionError,),
        debug_var="PROVISION_DEBUG",
        fast_exit=_offline(sys.argv[1:]),
    )
