"""``provision``: the typer app; each command group lives in its own module under commands/."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from provision.commands import cloud, images, pricing
from provision.errors import ProvisionError

app = typer.Typer(
    name="provision",
    help="Build CUDA images, launch cloud GPU/TPU machines, price jobs and plan workstations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

pricing.register(app)
images.register(app)
cloud.register(app)


def main() -> None:
    """Console-script entry point: ProvisionError becomes one line on stderr and its exit code."""
    err = Console(stderr=True, soft_wrap=True)
    try:
        app()
    except ProvisionError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err.print(f"[dim]hint:[/] {escape(exc.hint)}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
