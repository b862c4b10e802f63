"""provision commands: images (filled in by its own issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this group's commands to the provision app."""
