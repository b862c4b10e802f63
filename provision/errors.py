"""provision's one exception root; the CLI alone turns these into messages and exit codes."""

from __future__ import annotations


class ProvisionError(Exception):
    """Something provision could not do. ``hint`` is the next thing for the user to try."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ProvisionError):
    """Bad input: unknown GPU, impossible version combination, malformed file."""

    exit_code = 2


class CredentialsError(ProvisionError):
    """No usable credentials for a cloud; the hint says how to provide them (exit 3: could not run)."""


class MissingDependencyError(ProvisionError):
    """An optional extra (aws, gcp, docker, plot) is not installed; the hint names it (exit 3)."""


class CleanupInterrupted(ProvisionError):
    """A second signal stopped the cleanup of a failed launch; the store says what is left."""

    def __init__(self, message: str, hint: str, exit_code: int) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code
