"""``envcheck smoke``: does every framework really compute on every device? Exit 1 if not.

Imported by ``envcheck.cli`` at start-up, so only typer is imported here; the runner (and the
frameworks, in child interpreters) load when the command runs.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from envcheck.clirun import bounded

#: the longest a smoke child may run: a day
MAX_SECONDS = 86400.0


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
            help="Seconds each framework's child interpreter may take before it counts as hung (1 to 86400).",
            envvar="ENVCHECK_SMOKE_TIMEOUT",
            callback=bounded(1.0, MAX_SECONDS),
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

    from envcheck.errors import EnvcheckError
    from envcheck.progress import LiveProgress
    from envcheck.smoke.render import print_report, summary
    from envcheck.smoke.runner import run_smoke

    with LiveProgress("envcheck smoke") as progress:
        report = run_smoke(framework, timeout=timeout, progress=progress)
    if not framework and not any(run.installed for run in report.frameworks):
        raise EnvcheckError(
            "nothing to smoke-test: none of torch, tensorflow, jax is installed in this environment",
            hint="install one (pip install torch), or run envcheck with the interpreter that has it",
        )
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        print_report(report, Console(highlight=False, emoji=False))
    Console(stderr=True, highlight=False, emoji=False).print(summary(report))
    raise typer.Exit(1 if report.failed else 0)


def register(app: typer.Typer) -> None:
    """Add the ``smoke`` command to the envcheck app."""
    app.command("smoke")(smoke)
