"""envcheck's one exception root; the CLI alone turns these into messages and exit codes."""

from __future__ import annotations


class EnvcheckError(Exception):
    """Something envcheck could not do. ``hint`` is the next thing for the user to try."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(EnvcheckError):
    """Bad input: an unreadable or malformed report, an unknown option value."""

    exit_code = 2


class ProbeTimeout(EnvcheckError):
    """A probe or child process did not answer within its time limit."""
