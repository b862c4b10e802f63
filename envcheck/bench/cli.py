"""``envcheck bench``: how fast is each device, next to what it should do?

Imported by ``envcheck.cli`` at start-up, so only typer is imported here; the runner (and the
measuring framework, in a child interpreter) load when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def bench(
    *,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="A few seconds: smaller problems, fewer repeats.", envvar="ENVCHECK_BENCH_QUICK"
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as JSON.", envvar="ENVCHECK_JSON")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Also draw measured vs peak to this PNG (needs mlrig\\[plot]).",
            envvar="ENVCHECK_BENCH_PLOT",
        ),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="Who measures: auto (jax on a TPU machine, else torch), torch, jax, numpy (CPU only).",
            envvar="ENVCHECK_BENCH_BACKEND",
        ),
    ] = "auto",
    device: Annotated[
        str, typer.Option("--device", help="all, cpu or gpu.", envvar="ENVCHECK_BENCH_DEVICE")
    ] = "all",
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=1.0,
            help="Seconds the benchmark may take (default 120 quick, 900 full).",
            envvar="ENVCHECK_BENCH_TIMEOUT",
        ),
    ] = None,
) -> None:
    """Measure each device against its theoretical peak: matmul, memory, PCIe, GPU/CPU speedup.

    Matmul TFLOPS (float32, bfloat16, float16), memory copy and triad GB/s, pinned host<->device
    GB/s, each as the median of timed samples after warm-up, next to the peak (CPU: cores x clock
    x FLOPs/cycle of its ISA; GPU: the knowledge base's spec; PCIe: the link NVML reports).
    """
    from rich.console import Console

    from envcheck.bench.render import print_report
    from envcheck.bench.runner import run_bench
    from envcheck.errors import EnvcheckError

    report = run_bench(quick=quick, backend=backend, devices=device, timeout=timeout)
    if device == "gpu" and not report.error and not any(d.device.startswith("gpu") for d in report.devices):
        raise EnvcheckError(f"{report.backend} sees no GPU", hint="run envcheck (the report) to see why")
    measured = any(f.median is not None for f in report.figures)
    if not measured:
        raise EnvcheckError(
            f"the benchmark measured nothing: {report.error or 'no figure came back'}",
            hint="run envcheck smoke to see whether the framework computes at all",
        )
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        print_report(report, Console(highlight=False))
    if plot is not None:
        from envcheck.bench.plot import plot as draw

        draw(report, plot)
        Console(stderr=True, highlight=False).print(f"plot written to {plot}")
    raise typer.Exit(1 if report.failed else 0)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command to the envcheck app."""
    app.command("bench")(bench)
