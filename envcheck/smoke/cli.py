"""``envcheck smoke``: does every framework really compute on every device? Exit 1 if not.

Imported by ``envcheck.cli`` at start-up, so only typer is imported here; the runner (and the
frameworks, in child interpreters) load when the command runs.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer


def smoke(
    framework: Annotated[
        list[str] | None,
        typer.Option(
            "--framework",
            "-f",
            help="Only these frameworks (repeat or comma-separate): torch, tensorflow, jax. Default: all.",
            envvar="ENVCHECK_SMOKE_FRAMEWORK",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=1.0,
            help="Seconds each framework's child interpreter may take before it counts as hung.",
            envvar="ENVCHECK_SMOKE_TIMEOUT",
        ),
    ] = 180.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON.", envvar="ENVCHECK_JSON")
    ] = False,
) -> None:
    """Prove each framework really computes on each device (torch, tensorflow, jax).

    Arithmetic, autograd, a 50-step training run (and tf.keras fit), float16/bfloat16/TF32 against
    float32 and, on GPUs, cuDNN, host<->device copies and NCCL. Frameworks run concurrently in
    child interpreters: one that hangs, crashes or runs out of memory fails with its reason while
    the others finish. Exit 1 if any test fails.
    """
    from rich.console import Console

    from envcheck.smoke.render import print_report, summary
    from envcheck.smoke.runner import run_smoke

    report = run_smoke(framework, timeout=timeout)
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        print_report(report, Console(highlight=False))
    Console(stderr=True, highlight=False).print(summary(report))
    raise typer.Exit(1 if report.failed else 0)


def register(app: typer.Typer) -> None:
    """Add the ``smoke`` command to the envcheck app."""
    app.command("smoke")(smoke)
