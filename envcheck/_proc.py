"""Run external commands with a hard timeout; the answer is data, never an exception."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    #: why it produced no usable answer: "not found", "timed out after 5s", "killed by signal 11"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0


def run(argv: list[str], timeout: float = 5.0, env: dict[str, str] | None = None) -> CommandResult:
    """Run ``argv`` and capture its output; a missing binary, a hang or a crash becomes ``error``."""
    exe = shutil.which(argv[0], path=(env or os.environ).get("PATH"))
    if exe is None:
        return CommandResult(tuple(argv), None, "", "", error=f"{argv[0]}: not found on PATH")
    try:
        proc = subprocess.run(
            [exe, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            errors="replace",
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return CommandResult(tuple(argv), None, out, "", error=f"{argv[0]} timed out after {timeout:g}s")
    except OSError as exc:
        return CommandResult(tuple(argv), None, "", "", error=f"{argv[0]}: {exc.strerror or exc}")
    error = None
    if proc.returncode < 0:
        error = f"{argv[0]} killed by signal {-proc.returncode}"
    return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr, error=error)
