"""``envcheck bench``: registration of the command (filled in by its own issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command to the envcheck app."""
