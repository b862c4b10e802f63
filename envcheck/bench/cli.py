"""``envcheck bench``: how fast is each device, next to what it should do?

Imported by ``envcheck.cli`` at start-up, so only typer is imported here; the runner (and the
measuring framework, in a child interpreter) load when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from envcheck.clirun import bounded


def bench(
    *,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="About 10 s: a smaller time budget per figure (the full run takes a minute or two).",
            envvar="ENVCHECK_BENCH_QUICK",
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
            help="Seconds the benchmark may take before it counts as hung (default 120 quick, 900 full).",
            envvar="ENVCHECK_BENCH_TIMEOUT",
            callback=bounded(1.0, 86400.0),
        ),
    ] = None,
) -> None:
    """Measure each device against its theoretical peak: matmul, memory, PCIe, GPU/CPU speedup.

    Matmul TFLOPS (float32, bfloat16, float16), memory copy and triad GB/s, pinned host<->device
    GB/s, each as the median of timed samples after warm-up, next to the peak (CPU: cores x max
    clock x FLOPs/cycle of its ISA; GPU: the knowledge base's spec; PCIe: the link NVML reports).
    Problem sizes follow a time budget; a 16-bit type without a fast path on a device is skipped.
    """
    from rich.console import Console

    from envcheck.bench.render import print_report
    from envcheck.bench.runner import DEFAULT_TIMEOUT, run_bench
    from envcheck.errors import EnvcheckError, UsageError
    from envcheck.progress import LiveProgress

    if plot is not None:  # a plot that cannot be written fails now, not after minutes of measuring
        from envcheck.userfiles import WriteFailed, check_writable

        try:
            check_writable(plot)
        except WriteFailed as exc:
            raise UsageError(str(exc), hint="give --plot a writable PNG path") from None
    limit = timeout or DEFAULT_TIMEOUT["quick" if quick else "full"]
    with LiveProgress(f"envcheck bench{' --quick' if quick else ''}", limit=limit) as progress:
        report = run_bench(quick=quick, backend=backend, devices=device, timeout=timeout, progress=progress)
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
        print_report(report, Console(highlight=False, emoji=False))
    if plot is not None:
        from envcheck.bench.plot import plot as draw

        draw(report, plot)
        Console(stderr=True, highlight=False, emoji=False).print(f"plot written to {plot}", markup=False)
    raise typer.Exit(1 if report.failed else 0)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command to the envcheck app."""
    app.command("bench")(bench)
