"""``envcheck cluster`` registered at start-up without the cost of its ~30 options.

Typer turns every option of every command into a click parameter when ``envcheck`` starts
(about 14 ms for this command's). So ``envcheck`` gets a stub that takes the arguments as they
are and hands them to the real command in :mod:`envcheck.cluster.command`, built only when a
cluster command runs (``envcheck cluster --help`` included).
"""

from __future__ import annotations

import typer

_HELP = "Run envcheck on every node of a cluster (Ray, Slurm, SSH, Kubernetes): which node differs, and why."
_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _forward(name: str, ctx: typer.Context) -> None:
    from envcheck.cluster.command import sub_app

    sub_app(name)(args=list(ctx.args), prog_name=f"envcheck {name}")


def register(app: typer.Typer) -> None:
    """Add ``cluster`` (and the hidden node-side commands) to the envcheck app."""
    for name, hidden in (("cluster", False), ("cluster-node", True), ("cluster-allreduce", True)):

        def stub(ctx: typer.Context, _name: str = name) -> None:
            _forward(_name, ctx)

        app.command(
            name,
            help=_HELP if not hidden else None,
            hidden=hidden,
            context_settings=_PASS_THROUGH,
            add_help_option=False,
        )(stub)
