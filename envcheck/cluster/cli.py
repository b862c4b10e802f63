"""``envcheck cluster`` registered at start-up without the cost of its ~30 options.

Typer turns every option of every command into a click parameter when ``envcheck`` starts
(about 14 ms for this command's). So ``envcheck`` gets a stub that takes the arguments as they
are and hands them to the real command in :mod:`envcheck.cluster.command`, built only when a
cluster command runs (``envcheck cluster --help`` included).
"""

from __future__ import annotations

from collections.abc import Callable

import typer

_HELP = "Run envcheck on every node of a cluster (Ray, Slurm, SSH, Kubernetes): which node differs, and why."
_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _forward(name: str, ctx: typer.Context) -> None:
    from envcheck.cluster.command import sub_app

    # not standalone: errors reach envcheck's own handler (one line, exit codes, child clean-up)
    code = sub_app(name)(args=list(ctx.args), prog_name=f"envcheck {name}", standalone_mode=False)
    if isinstance(code, int) and code:
        raise typer.Exit(code)


def _stub(name: str) -> Callable[[typer.Context], None]:
    """The command that forwards to ``name``; a closure, so typer sees no parameter but ctx."""

    def stub(ctx: typer.Context) -> None:
        _forward(name, ctx)

    return stub


def register(app: typer.Typer) -> None:
    """Add ``cluster`` (and the hidden node-side commands) to the envcheck app."""
    for name, hidden in (("cluster", False), ("cluster-node", True), ("cluster-allreduce", True)):
        app.command(
            name,
            help=_HELP if not hidden else None,
            hidden=hidden,
            context_settings=_PASS_THROUGH,
            add_help_option=False,
        )(_stub(name))
