"""The ``envcheck cluster`` commands with all their options (built only when one of them runs).

The engines' libraries (ray, asyncssh) load inside their adapter when the command runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from envcheck.cluster.engine import Engine, Progress
    from envcheck.cluster.models import ClusterReport

_ENGINES = "--ray, --slurm, --ssh, --k8s or --from"
CLUSTER_HELP = (
    "Run envcheck on every node of a cluster and point at the node that differs.\n\n"
    "One table of nodes by layer (same values collapse, different ones show with their nodes); drift in "
    "driver, CUDA, cuDNN, NCCL and framework versions naming the odd nodes; benchmark outliers; each "
    "node's own problems; unreachable, hung and crashed nodes with their reason. Exit 1 when any node "
    "has an error."
)


def _pick_engine(  # noqa: PLR0917 (one argument per engine option)
    ray: str | None,
    slurm: bool,
    ssh: list[str] | None,
    ssh_config: Path | None,
    k8s: bool,
    k8s_opts: dict[str, object],
    command: str | None,
) -> Engine:
    from envcheck.errors import UsageError

    chosen = [n for n, on in (("--ray", ray), ("--slurm", slurm), ("--ssh", ssh), ("--k8s", k8s)) if on]
    if len(chosen) > 1:
        raise UsageError(f"choose one engine, not {' and '.join(chosen)}")
    if not chosen:
        raise UsageError(
            f"say which engine reaches the nodes: {_ENGINES}",
            hint="e.g. envcheck cluster --ssh 'train-*'  or  salloc -N4 envcheck cluster --slurm",
        )
    if ray:
        from envcheck.cluster.engine_ray import RayEngine

        return RayEngine(ray)
    if slurm:
        from envcheck.cluster.engine_slurm import SlurmEngine

        return SlurmEngine(command=command)
    if k8s:
        from envcheck.cluster.engine_k8s import KubectlEngine

        return KubectlEngine(**k8s_opts)  # type: ignore[arg-type]
    from envcheck.cluster.engine_ssh import DEFAULT_COMMAND, SshEngine
    from envcheck.cluster.sshhosts import expand_hosts

    return SshEngine(
        expand_hosts(ssh or [], ssh_config), config=ssh_config, command=command or DEFAULT_COMMAND
    )


def _progress() -> Progress | None:
    """'k nodes answered (last: NAME)' on stderr while waiting, only on a terminal."""
    if not sys.stderr.isatty():
        return None
    done: list[str] = []

    def tick(name: str, what: str) -> None:
        done.append(name)
        sys.stderr.write(f"\r{len(done)} nodes answered (last: {name}, {what})\x1b[K")
        sys.stderr.flush()

    return tick


def _emit(report: ClusterReport, as_json: bool, markdown: bool, verbose: bool, output: Path | None) -> None:
    from envcheck.errors import UsageError

    if as_json and markdown:
        raise UsageError("--json and --markdown are exclusive: choose one output format")
    if output is not None:
        from envcheck.cli import _save

        _save(output, report.model_dump_json(indent=2))
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    elif markdown:
        from envcheck.cluster.render import to_markdown

        sys.stdout.write(to_markdown(report))
    else:
        from rich.console import Console

        from envcheck.cluster.render import print_cluster

        print_cluster(report, Console(highlight=False, soft_wrap=False), verbose=verbose)


def cluster(
    *,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="auto|ADDRESS",
            help="Run through the Ray cluster at ADDRESS (auto: the one this machine belongs to): "
            "one task per node, pinned by node id. Needs mlrig\\[cluster].",
            envvar="ENVCHECK_CLUSTER_RAY",
        ),
    ] = None,
    slurm: Annotated[
        bool,
        typer.Option(
            "--slurm",
            help="Run inside a Slurm allocation (salloc/sbatch): srun one task per allocated node.",
            envvar="ENVCHECK_CLUSTER_SLURM",
        ),
    ] = False,
    ssh: Annotated[
        list[str] | None,
        typer.Option(
            "--ssh",
            metavar="HOSTS",
            help="SSH hosts: 'a,b,c', @hostfile, or a glob over your ssh config's aliases ('train-*', "
            "the names provision up writes). Repeatable. Needs mlrig\\[cluster].",
            envvar="ENVCHECK_CLUSTER_SSH",
        ),
    ] = None,
    ssh_config: Annotated[
        Path | None,
        typer.Option(
            "--ssh-config", help="ssh config file (default ~/.ssh/config).", envvar="ENVCHECK_SSH_CONFIG"
        ),
    ] = None,
    k8s: Annotated[
        bool,
        typer.Option(
            "--k8s",
            help="Run the Indexed Job of --k8s-manifest with kubectl and read the pods' answers.",
            envvar="ENVCHECK_CLUSTER_K8S",
        ),
    ] = False,
    k8s_manifest: Annotated[
        bool,
        typer.Option(
            "--k8s-manifest",
            help="Print the Kubernetes Indexed Job (one pod per node, GPUs requested, anti-affinity) "
            "and exit.",
            envvar="ENVCHECK_K8S_MANIFEST",
        ),
    ] = False,
    k8s_nodes: Annotated[
        int,
        typer.Option(
            "--k8s-nodes", min=1, help="Nodes (pods) for --k8s/--k8s-manifest.", envvar="ENVCHECK_K8S_NODES"
        ),
    ] = 2,
    k8s_image: Annotated[
        str | None,
        typer.Option(
            "--k8s-image",
            help="Your training image with mlrig installed (checks its frameworks too). Default: plain "
            "Python, envcheck installed at start (checks the nodes only).",
            envvar="ENVCHECK_K8S_IMAGE",
        ),
    ] = None,
    k8s_gpus: Annotated[
        int,
        typer.Option(
            "--k8s-gpus", min=0, help="nvidia.com/gpu per pod (a whole node's).", envvar="ENVCHECK_K8S_GPUS"
        ),
    ] = 8,
    k8s_namespace: Annotated[
        str, typer.Option("--k8s-namespace", help="Namespace of the Job.", envvar="ENVCHECK_K8S_NAMESPACE")
    ] = "default",
    from_files: Annotated[
        list[str] | None,
        typer.Option(
            "--from",
            metavar="FILES",
            help="Compare saved answers instead of running: one envcheck --json report (or cluster-node "
            "output) per node; a directory for all files in it. Repeatable.",
            envvar="ENVCHECK_CLUSTER_FROM",
        ),
    ] = None,
    smoke: Annotated[
        bool,
        typer.Option(
            "--smoke", help="Also run envcheck smoke on every node.", envvar="ENVCHECK_CLUSTER_SMOKE"
        ),
    ] = False,
    smoke_framework: Annotated[
        list[str] | None,
        typer.Option(
            "--framework", "-f", help="Smoke-test only these frameworks.", envvar="ENVCHECK_SMOKE_FRAMEWORK"
        ),
    ] = None,
    bench: Annotated[
        bool,
        typer.Option(
            "--bench",
            help="Also benchmark every node (matmul, memory, host-device copies): outliers.",
            envvar="ENVCHECK_CLUSTER_BENCH",
        ),
    ] = False,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick/--full", help="Benchmark size (quick: seconds).", envvar="ENVCHECK_BENCH_QUICK"
        ),
    ] = True,
    bench_backend: Annotated[
        str,
        typer.Option(
            "--backend", help="Benchmark backend: auto, torch, jax, numpy.", envvar="ENVCHECK_BENCH_BACKEND"
        ),
    ] = "auto",
    collective: Annotated[
        bool,
        typer.Option(
            "--collective",
            help="Also time an all-reduce across all nodes (torch.distributed: NCCL on GPUs, gloo on CPU) "
            "against the interconnect; when low, ring pairs point at the slow node or link.",
            envvar="ENVCHECK_CLUSTER_COLLECTIVE",
        ),
    ] = False,
    collective_mib: Annotated[
        float,
        typer.Option(
            "--collective-size",
            min=0.001,
            help="All-reduce message size, MiB.",
            envvar="ENVCHECK_COLLECTIVE_SIZE",
        ),
    ] = 64.0,
    interconnect: Annotated[
        str | None,
        typer.Option(
            "--interconnect",
            help="What links the nodes, when the nodes cannot tell: e.g. ib-ndr, efa-p5, eth-100g "
            "(envcheck cluster --interconnect list).",
            envvar="ENVCHECK_INTERCONNECT",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=1.0,
            help="Seconds each node may take (default 60, +180 with --smoke, +120 with --bench).",
            envvar="ENVCHECK_CLUSTER_TIMEOUT",
        ),
    ] = None,
    margin: Annotated[
        float,
        typer.Option(
            "--margin",
            min=0.01,
            max=0.99,
            help="Outlier margin: this fraction below the cluster median.",
            envvar="ENVCHECK_CLUSTER_MARGIN",
        ),
    ] = 0.20,
    envcheck_command: Annotated[
        str | None,
        typer.Option(
            "--envcheck-command",
            help="How to start envcheck on the nodes "
            "(ssh: 'envcheck'; slurm: this interpreter's -m envcheck).",
            envvar="ENVCHECK_CLUSTER_COMMAND",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the cluster report as JSON (schema_version inside).", envvar="ENVCHECK_JSON"
        ),
    ] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print GitHub markdown.", envvar="ENVCHECK_MARKDOWN")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every fact.", envvar="ENVCHECK_VERBOSE")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Also save the JSON report to this file.", envvar="ENVCHECK_OUTPUT"
        ),
    ] = None,
) -> None:
    """Run envcheck on every node of a cluster and point at the node that differs (help: CLUSTER_HELP)."""
    from envcheck.cluster.driver import ClusterOptions, run_cluster
    from envcheck.cluster.driver import from_files as load_files

    if interconnect == "list":
        from envcheck.cluster.interconnect import describe_table

        sys.stdout.write(describe_table())
        raise typer.Exit(0)
    k8s_opts: dict[str, object] = {
        "nodes": k8s_nodes,
        "image": k8s_image,
        "gpus": k8s_gpus,
        "namespace": k8s_namespace,
    }
    opts = ClusterOptions(
        smoke=smoke,
        smoke_frameworks=list(smoke_framework or []),
        bench=bench,
        quick=quick,
        bench_backend=bench_backend,
        timeout=timeout,
        margin=margin,
        collective=collective,
        collective_mib=collective_mib,
        interconnect=interconnect,
    )
    if k8s_manifest:
        from envcheck.cluster.engine_k8s import render_manifest

        sys.stdout.write(render_manifest(opts=opts, **k8s_opts))  # type: ignore[arg-type]
        raise typer.Exit(0)
    if from_files:
        report = load_files(from_files, margin)
    else:
        engine = _pick_engine(ray, slurm, ssh, ssh_config, k8s, {**k8s_opts, "opts": opts}, envcheck_command)
        try:
            report = run_cluster(engine, opts, progress=_progress())
        finally:
            engine.close()
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")
    _emit(report, as_json, markdown, verbose, output)
    raise typer.Exit(1 if report.has_errors else 0)


def cluster_node(
    *,
    smoke: Annotated[bool, typer.Option("--smoke")] = False,
    framework: Annotated[list[str] | None, typer.Option("--framework")] = None,
    bench: Annotated[bool, typer.Option("--bench")] = False,
    quick: Annotated[bool, typer.Option("--quick/--full")] = True,
    backend: Annotated[str, typer.Option("--backend")] = "auto",
    deadline: Annotated[float, typer.Option("--deadline", min=1.0)] = 60.0,
) -> None:
    """(internal) What envcheck cluster runs on each node: protocol lines on stdout."""
    from envcheck.cluster.node import NodeOptions, run_node

    code = run_node(
        NodeOptions(
            smoke=smoke,
            smoke_frameworks=list(framework or []),
            bench=bench,
            quick=quick,
            bench_backend=backend,
            deadline=deadline,
        )
    )
    sys.stdout.flush()
    os._exit(code)  # the watchdog timer and abandoned probe threads must not keep the node waiting


def cluster_allreduce(
    *,
    pick_port: Annotated[bool, typer.Option("--pick-port")] = False,
    world: Annotated[int, typer.Option("--world", min=1)] = 1,
    master: Annotated[str, typer.Option("--master")] = "127.0.0.1:29500",
    size_mib: Annotated[float, typer.Option("--size-mib", min=0.001)] = 64.0,
    timeout: Annotated[float, typer.Option("--timeout", min=1.0)] = 120.0,
) -> None:
    """(internal) One rank of envcheck cluster --collective (or --pick-port: a free port for rank 0)."""
    from envcheck.cluster import allreduce

    if pick_port:
        code = allreduce.pick_port(sys.stdout)
    else:
        code = allreduce.run_rank(world, master, size_mib, timeout)
    sys.stdout.flush()
    os._exit(code)


def sub_app(name: str) -> typer.Typer:
    """A one-command Typer app for ``name`` (``envcheck.cluster.cli`` hands the arguments to it)."""
    app = typer.Typer(
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    commands: dict[str, Callable[..., None]] = {
        "cluster": cluster,
        "cluster-node": cluster_node,
        "cluster-allreduce": cluster_allreduce,
    }
    app.command(name, help=CLUSTER_HELP if name == "cluster" else None)(commands[name])
    return app
