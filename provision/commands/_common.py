"""What the provision command modules share: the ``--json`` option and the two consoles.

stdout carries data (tables, JSON), stderr carries progress and notes, so ``provision ... | jq``
and ``> file`` stay clean. rich is imported only when a command prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout.", envvar="PROVISION_JSON")
]


def out_console(*, wide_when_piped: bool = False) -> Console:
    """The data console (stdout).

    ``wide_when_piped``: 160 columns when stdout is not a terminal and COLUMNS is unset, so wide
    tables stay whole in a pipe instead of wrapping at rich's default 80.
    """
    import os
    import sys

    from rich.console import Console

    wide = wide_when_piped and not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=160 if wide else None, emoji=False)


def err_console() -> Console:
    """The progress and notes console (stderr)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, emoji=False)
