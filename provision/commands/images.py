"""provision commands: the ``image`` group (plan, render, build, test).

Parsing and presentation only: resolution lives in provision.images.resolve, templates in
provision.images.render, engines in provision.images.backends/_docker. Nothing heavy is imported
until a command runs, so ``provision --help`` stays fast.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from envcheck.clirun import bounded
from provision.commands._common import JsonOpt, err_console, out_console
from provision.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from provision.images.resolve import ImagePlan, PlanRequest


class Flavor(str, Enum):
    runtime = "runtime"
    devel = "devel"


class BackendChoice(str, Enum):
    auto = "auto"
    sdk = "sdk"
    cli = "cli"


FrameworkOpt = Annotated[
    str,
    typer.Option(
        "--framework",
        "-f",
        help="torch, tensorflow or jax, optionally pinned: torch==2.6.",
        envvar="PROVISION_FRAMEWORK",
    ),
]
CudaOpt = Annotated[
    str | None,
    typer.Option(
        "--cuda",
        help="CUDA version (12.4, cu126) or 'cpu'. Default: the best that fits.",
        envvar="PROVISION_CUDA",
    ),
]
DriverOpt = Annotated[
    str | None,
    typer.Option(
        "--driver",
        help="The target's NVIDIA driver (535.104.05): picks the newest CUDA it runs.",
        envvar="PROVISION_DRIVER",
    ),
]
GpuOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--gpu", help="Target GPU (repeatable): refuses builds without code for it.", envvar="PROVISION_GPU"
    ),
]
PythonOpt = Annotated[
    str | None, typer.Option("--python", help="Python version (3.11).", envvar="PROVISION_PYTHON")
]
FlavorOpt = Annotated[
    Flavor,
    typer.Option(
        "--flavor",
        help="runtime (lean) or devel (CUDA toolkit + cuDNN headers for extensions).",
        envvar="PROVISION_FLAVOR",
    ),
]
JupyterOpt = Annotated[
    bool,
    typer.Option(
        "--jupyter", help="Add JupyterLab, port 8888 and a HEALTHCHECK.", envvar="PROVISION_JUPYTER"
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--from-envcheck",
        help="Plan for the machine in this envcheck JSON report.",
        envvar="PROVISION_FROM_ENVCHECK",
    ),
]
BaseOpt = Annotated[
    str | None,
    typer.Option(
        "--base",
        help="Use this (pinned) base image instead of the planned one.",
        envvar="PROVISION_IMAGE_BASE",
    ),
]
FwIndexOpt = Annotated[
    str | None,
    typer.Option(
        "--framework-index",
        help="Wheel index for the framework step ('none': local wheels only).",
        envvar="PROVISION_FRAMEWORK_INDEX",
    ),
]
IndexOpt = Annotated[
    str | None,
    typer.Option(
        "--index-url",
        help="Index for the other packages ('none': local wheels only).",
        envvar="PROVISION_INDEX_URL",
    ),
]
EnvcheckReqOpt = Annotated[
    str | None,
    typer.Option(
        "--envcheck-requirement",
        help="What installs envcheck in the image from an index (default: render packs this mlrig "
        "into the context).",
        envvar="PROVISION_ENVCHECK_REQUIREMENT",
    ),
]

#: version of the JSON documents the image commands print ("<major>.<minor>", see envcheck.schemas)
SCHEMA_VERSION = "1.0"


def _plan(
    framework: str,
    cuda: str | None,
    driver: str | None,
    gpu: list[str] | None,
    python: str | None,
    flavor: Flavor,
    jupyter: bool,
    from_envcheck: Path | None,
    base: str | None,
    framework_index: str | None,
    index_url: str | None,
    envcheck_requirement: str | None,
) -> ImagePlan:
    from provision.images.resolve import PlanRequest, parse_framework, request_from_report, resolve

    fw, version = parse_framework(framework)
    gpus = tuple(g.strip() for item in gpu or [] for g in item.split(",") if g.strip())
    req: PlanRequest = PlanRequest(
        framework=fw,
        version=version,
        cuda=cuda,
        driver=driver,
        gpus=gpus,
        python=python,
        flavor="devel" if flavor == Flavor.devel else "runtime",
        jupyter=jupyter,
        base=base,
        framework_index=framework_index,
        index_url=index_url,
        envcheck_requirement=envcheck_requirement,
    )
    if from_envcheck is not None:
        from envcheck.userfiles import ReadFailed, read_bytes

        try:
            text = read_bytes(from_envcheck).decode("utf-8", errors="replace")
        except ReadFailed as exc:
            raise UsageError(str(exc)) from None
        req = request_from_report(text, str(from_envcheck), req)
    return resolve(req)


def _show_plan(plan: ImagePlan, console: Console) -> None:
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    rows: list[tuple[str, str | None]] = [
        ("framework", f"{plan.framework} {plan.framework_version}  ({plan.requirement})"),
        ("CUDA", f"{plan.cuda} ({plan.cuda_status})" if plan.cuda else "none (CPU image)"),
        ("cuDNN", plan.cudnn),
        ("Python", f"{plan.python} ({plan.os})"),
        ("base image", f"{plan.base_image}  [{plan.flavor}]"),
        (
            "driver",
            f">= {plan.min_driver}"
            + (
                f" (>= {plan.toolkit_driver} for every CUDA {plan.cuda} feature)"
                if plan.toolkit_driver
                else ""
            )
            if plan.min_driver
            else None,
        ),
        ("your driver", f"{plan.driver}: {plan.driver_mode}" if plan.driver else None),
        (
            "GPUs",
            ", ".join(
                f"{g.name} (sm {g.compute_capability}: {' '.join(g.covered_by) or 'unchecked'})"
                for g in plan.gpus
            )
            or None,
        ),
        ("index", plan.framework_index),
        ("envcheck", plan.envcheck_requirement),
    ]
    for k, v in rows:
        if v:
            t.add_row(k, Text(v))
    console.print(t)
    for note in plan.notes:
        console.print(Text.assemble(("note: ", "yellow"), note))
    dates = sorted({f.as_of for f in plan.facts})
    if dates:
        console.print(
            Text(f"facts as of {dates[0]}..{dates[-1]} (envcheck knowledge base; base-image tables)", "dim")
        )


def plan_cmd(
    framework: FrameworkOpt = "torch",
    cuda: CudaOpt = None,
    driver: DriverOpt = None,
    gpu: GpuOpt = None,
    python: PythonOpt = None,
    flavor: FlavorOpt = Flavor.runtime,
    jupyter: JupyterOpt = False,
    from_envcheck: ReportOpt = None,
    base: BaseOpt = None,
    framework_index: FwIndexOpt = None,
    index_url: IndexOpt = None,
    envcheck_requirement: EnvcheckReqOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Resolve framework <-> CUDA <-> cuDNN <-> base image <-> driver <-> GPU into one image plan."""
    plan = _plan(
        framework,
        cuda,
        driver,
        gpu,
        python,
        flavor,
        jupyter,
        from_envcheck,
        base,
        framework_index,
        index_url,
        envcheck_requirement,
    )
    if json_out:
        doc = {"schema_version": SCHEMA_VERSION, **plan.model_dump(mode="json"), "labels": plan.labels()}
        typer.echo(json.dumps(doc, indent=2))
        return
    _show_plan(plan, out_console())


def render_cmd(
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Directory to write the build context into.", envvar="PROVISION_IMAGE_DIR"
        ),
    ],
    framework: FrameworkOpt = "torch",
    cuda: CudaOpt = None,
    driver: DriverOpt = None,
    gpu: GpuOpt = None,
    python: PythonOpt = None,
    flavor: FlavorOpt = Flavor.runtime,
    jupyter: JupyterOpt = False,
    from_envcheck: ReportOpt = None,
    base: BaseOpt = None,
    framework_index: FwIndexOpt = None,
    index_url: IndexOpt = None,
    envcheck_requirement: EnvcheckReqOpt = None,
    cache_mounts: Annotated[
        bool,
        typer.Option(
            "--cache-mounts",
            help="BuildKit pip/apt cache mounts (built with the docker CLI).",
            envvar="PROVISION_CACHE_MOUNTS",
        ),
    ] = False,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            "--ca-bundle",
            help="CA bundle for pip in the builder stage only (TLS proxies).",
            envvar="PROVISION_CA_BUNDLE",
        ),
    ] = None,
    wheel: Annotated[
        list[Path] | None,
        typer.Option("--wheel", help="Local wheel pip may use (repeatable).", envvar="PROVISION_WHEEL"),
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            "--source", help="Project source dir in the context, copied last.", envvar="PROVISION_SOURCE"
        ),
    ] = "src",
    syntax: Annotated[
        str | None,
        typer.Option(
            "--syntax",
            help="Add a '# syntax=' line (needs registry access at build).",
            envvar="PROVISION_SYNTAX",
        ),
    ] = None,
    no_lint: Annotated[
        bool,
        typer.Option(
            "--no-lint", help="Skip hadolint and the structural checks.", envvar="PROVISION_NO_LINT"
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace a Dockerfile or .dockerignore that provision did not write (or that was edited).",
            envvar="PROVISION_FORCE",
        ),
    ] = False,
) -> None:
    """Write a Dockerfile, .dockerignore and .mlrig/ (wheels, plan) for the plan into DIR.

    envcheck, which proves the image works, is installed from a wheel of this very mlrig packed
    into the context, unless --envcheck-requirement names what to install from an index.
    """
    from provision.images import lint
    from provision.images.render import RenderOptions, write_context

    plan = _plan(
        framework,
        cuda,
        driver,
        gpu,
        python,
        flavor,
        jupyter,
        from_envcheck,
        base,
        framework_index,
        index_url,
        envcheck_requirement,
    )
    opts = RenderOptions(
        cache_mounts=cache_mounts,
        ca_bundle=ca_bundle,
        wheels=tuple(wheel or ()),
        source_dir=source,
        syntax=syntax,
        bundle_self=envcheck_requirement is None,
        force=force,
    )
    ctx = write_context(plan, output, opts)
    err = err_console()
    err.print(
        Text(
            f"wrote {ctx.dockerfile}, {output / '.dockerignore'} and {output / '.mlrig'}/ "
            f"({len(ctx.wheels)} local wheels)"
        )
    )
    if ctx.self_wheel is not None:
        err.print(
            Text(
                f"packed this mlrig into {ctx.self_wheel.relative_to(output)}: the image installs envcheck "
                f"from it (--envcheck-requirement 'mlrig==<version>' installs a release from the index)"
            )
        )
    if not no_lint:
        result = lint.lint(ctx.dockerfile.read_text(), allow_syntax=bool(syntax))
        for issue in result.issues:
            err.print(Text.assemble(("lint: ", "yellow"), str(issue)))
        if result.hadolint_skipped:
            err.print(Text(f"hadolint skipped: {result.hadolint_skipped}", style="dim"))
        elif result.ok:
            err.print(Text("hadolint and structural checks: clean", style="green"))
    err.print(Text(f"build it: provision image build {output}"))


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    return f"{n} B"


def _parse_build_args(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--build-arg {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def build_cmd(
    context: Annotated[Path, typer.Argument(help="A directory rendered by `provision image render`.")] = Path(
        "."
    ),
    tag: Annotated[
        str | None,
        typer.Option(
            "--tag",
            "-t",
            help="Image name:tag (default mlrig/<framework>:<version>-<cuda>).",
            envvar="PROVISION_IMAGE_TAG",
        ),
    ] = None,
    backend: Annotated[
        BackendChoice,
        typer.Option(
            "--backend",
            help="sdk (legacy builder), cli (BuildKit), auto: cli only for cache mounts.",
            envvar="PROVISION_BUILD_BACKEND",
        ),
    ] = BackendChoice.auto,
    build_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--build-arg", help="KEY=VALUE, e.g. BASE_IMAGE=local/mirror:tag.", envvar="PROVISION_BUILD_ARG"
        ),
    ] = None,
    network: Annotated[
        str,
        typer.Option(
            "--network",
            help="Network for RUN steps ('host', 'default', 'none').",
            envvar="PROVISION_BUILD_NETWORK",
        ),
    ] = "host",
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Rebuild every layer.", envvar="PROVISION_NO_CACHE")
    ] = False,
    push: Annotated[
        str | None,
        typer.Option("--push", help="Push as REGISTRY/NAME:TAG after building.", envvar="PROVISION_PUSH"),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="Seconds the whole build may take (10 to 86400).",
            envvar="PROVISION_BUILD_TIMEOUT",
            callback=bounded(10.0, 86400.0),
        ),
    ] = 3600.0,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Show every build output line.", envvar="PROVISION_VERBOSE"),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Build a rendered context with progress; print the image size and each layer's size."""
    from provision.images.build import StackMismatch, build_image, check_reference
    from provision.images.progress import BuildProgress

    for ref, what in ((tag, "--tag"), (push, "--push")):
        if ref is not None:
            check_reference(ref, what)
    build_args = _parse_build_args(build_arg)
    err = err_console()
    with BuildProgress(err, verbose=verbose) as progress:
        outcome = build_image(
            context,
            tag=tag,
            backend=backend.value,
            build_args=build_args,
            network=None if network == "default" else network,
            no_cache=no_cache,
            push=push,
            timeout=timeout,
            on_event=progress,
        )
    info = outcome.info
    if json_out:
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "image": outcome.tag,
            "id": outcome.image_id,
            "backend": outcome.backend,
            "seconds": round(outcome.seconds, 2),
            "size_bytes": info.size,
            "layers": [{"size_bytes": layer.size, "created_by": layer.created_by} for layer in info.layers],
            "labels": info.labels,
            "problems": outcome.problems,
            "pushed": outcome.pushed,
        }
        typer.echo(json.dumps(data, indent=2))
    else:
        from rich.table import Table

        out = out_console()
        t = Table(
            title=Text(
                f"{outcome.tag}: {_size(info.size)} ({outcome.backend} backend, {outcome.seconds:.1f} s)"
            ),
            title_justify="left",
        )
        t.add_column("size", justify="right")
        t.add_column("layer (newest first)", overflow="fold")
        for layer in info.layers:
            if layer.size:
                text = " ".join(layer.created_by.replace("/bin/sh -c #(nop) ", "").split()) or "(base image)"
                t.add_row(_size(layer.size), Text(text[:120]))
        out.print(t)
        if outcome.pushed:
            err.print(Text(f"pushed {outcome.pushed}"))
    if outcome.problems:
        raise StackMismatch(
            f"built {outcome.tag}, but: " + "; ".join(outcome.problems),
            hint="render again with a base that matches the plan, or fix --build-arg BASE_IMAGE",
        )


def test_cmd(
    image: Annotated[str, typer.Argument(help="Image to test (name:tag or id).")],
    gpus: Annotated[
        bool | None,
        typer.Option(
            "--gpus/--no-gpus",
            help="Pass all GPUs (default: when this host has an NVIDIA driver).",
            envvar="PROVISION_TEST_GPUS",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="Seconds each check may take (5 to 86400).",
            envvar="PROVISION_TEST_TIMEOUT",
            callback=bounded(5.0, 86400.0),
        ),
    ] = 600.0,
    json_out: JsonOpt = False,
) -> None:
    """Run envcheck and envcheck smoke inside IMAGE and check its stack against its labels."""
    from provision.images.selftest import run_selftest

    info, results = run_selftest(image, gpus=gpus, timeout=timeout)
    failed = any(r.ok is False for r in results)
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "schema_version": SCHEMA_VERSION,
                    "image": image,
                    "ok": not failed,
                    "labels": info.labels,
                    "checks": [
                        {"name": r.name, "ok": r.ok, "summary": r.summary, "exit_code": r.exit_code}
                        for r in results
                    ],
                },
                indent=2,
            )
        )
    else:
        from rich.table import Table

        t = Table(title=Text(f"{image}: {_size(info.size)}"), title_justify="left")
        t.add_column("check")
        t.add_column("result")
        t.add_column("details", overflow="fold")
        mark = {True: Text("pass", "green"), False: Text("FAIL", "red"), None: Text("n/a", "yellow")}
        for r in results:
            t.add_row(Text(r.name), mark[r.ok], Text(r.summary))
        out_console().print(t)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``image`` group to the provision app."""
    group = typer.Typer(
        name="image",
        help="Plan, render, build and test CUDA deep-learning images that get the versions right.",
        no_args_is_help=True,
    )
    group.command("plan")(plan_cmd)
    group.command("render")(render_cmd)
    group.command("build")(build_cmd)
    group.command("test")(test_cmd)
    app.add_typer(group, name="image")
