"""Run a typer app as a console script, the same way for ``envcheck`` and ``provision``.

One place decides how a run ends, so both commands behave alike:

- a usage error (bad option, bad value) is ONE line on stderr and exit 2, not typer's box:
  ``error: Invalid value for '--timeout': nan is not a finite number (see 'envcheck -h')``;
- our own errors (``EnvcheckError``, ``ProvisionError``) print ``error:`` and ``hint:`` lines
  and exit with their code (2 usage, 3 could not run, 1 checks failed);
- Ctrl-C exits 130, SIGTERM 143, SIGHUP 129; on those and on every other way out every child
  interpreter still running is killed with its process group (``envcheck._child.kill_all``);
- a closed stdout pipe (``| head``) is a normal end;
- anything unexpected is one line naming the bug, with the traceback behind a debug variable
  (``ENVCHECK_DEBUG=1`` / ``PROVISION_DEBUG=1``), which also re-raises our own errors.

Also here: :func:`bounded`, the callback every numeric option uses, because typer's ``min=``
lets NaN through (every comparison with NaN is false) and no maximum stops ``1e308``.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

import typer


class _Reportable(Protocol):
    message: str
    hint: str | None
    exit_code: int


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind, then exit 128 + the signal number (Ctrl-C: 130).

    Not a KeyboardInterrupt: typer turns that into a silent exit 130 before we could say so."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: Any) -> None:
    # No import here, not even a cached one: a handler that imports while the interrupted code sits
    # inside an import corrupts importlib's per-thread bookkeeping on Python < 3.12 (the outer
    # import then fails with KeyError(thread id) instead of unwinding with Interrupted).
    # A process that never imported _child has no children to kill.
    child = sys.modules.get("envcheck._child")
    if child is not None:
        child.kill_all()  # now, before any `with` block waits for its workers to finish
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP kill the children first, then unwind the main thread."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            with contextlib.suppress(ValueError, OSError):  # not the main thread / not supported
                signal.signal(sig, _on_signal)


def bounded(
    low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> Callable[[float | None], float | None]:
    """A typer option callback: the value must be a finite number in [low, high] (or (low, high])."""

    def check(value: float | None) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value):
            raise typer.BadParameter(f"{value} is not a finite number")
        if low is not None and (value <= low if low_open else value < low):
            raise typer.BadParameter(f"{value:g} is {'not above' if low_open else 'below'} {low:g}")
        if high is not None and value > high:
            raise typer.BadParameter(f"{value:g} is above the limit of {high:g}")
        return value

    return check


def print_error(message: str, hint: str | None = None) -> None:
    """``error: message`` and ``hint: ...`` on stderr; user text is never read as Rich markup."""
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
    err.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        err.print(f"[dim]hint:[/] {escape(hint)}")


def _usage_line(exc: typer.TyperException, prog: str) -> tuple[str, str]:
    """typer's usage error as one line, and the help command that explains the right usage."""
    fmt = getattr(exc, "format_message", None)
    message = fmt() if callable(fmt) else str(exc)
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or prog
    message = " ".join(str(message).split())
    return message, f"{path} -h"


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _finish(code: int, fast_exit: bool) -> NoReturn:
    child = sys.modules.get("envcheck._child")  # never imported: no child to kill (and no import)
    if child is not None:
        child.kill_all()
    _flush()
    if fast_exit:
        # skip the interpreter's teardown (~10 ms of a ~0.2 s report): output is flushed, files
        # were written and closed synchronously, abandoned probe threads are daemons
        os._exit(code)
    sys.exit(code)


def outcome(
    app: typer.Typer,
    args: list[str] | None = None,
    *,
    prog: str,
    errors: tuple[type[Exception], ...],
    debug_var: str,
) -> int:
    """Run ``app`` on ``args`` (default ``sys.argv[1:]``), print any error as the module
    docstring says, and return the exit code. In-process and without exiting (the fuzz test
    drives both CLIs through this); :func:`run` is the console-script wrapper around it."""
    debug = bool(os.environ.get(debug_var))
    try:
        result = app(args=args, standalone_mode=False, prog_name=prog)
        return result if isinstance(result, int) else 0
    except SystemExit as done:
        if isinstance(done.__context__, BrokenPipeError):  # rich's on_broken_pipe exits 1: the
            return 0  # reader went away (`| head`), which is not a failure of the command
        if isinstance(done.code, int) or done.code is None:
            return done.code or 0
        sys.stderr.write(f"{done.code}\n")
        return 1
    except errors as exc:
        if debug:
            raise
        err: _Reportable = exc  # type: ignore[assignment]
        print_error(err.message, err.hint)
        return err.exit_code
    except typer.Abort:
        sys.stderr.write("cancelled\n")
        return 1
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # typer printed the help: nothing was asked
            return 2
        message, helper = _usage_line(exc, prog)
        print_error(f"{message} (see '{helper}')")
        code = getattr(exc, "exit_code", 2)
        return code if isinstance(code, int) else 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Interrupted as exc:
        name = signal.Signals(exc.signum).name
        sys.stderr.write("interrupted\n" if exc.signum == signal.SIGINT else f"interrupted by {name}\n")
        return 128 + exc.signum
    except BrokenPipeError:
        with contextlib.suppress(OSError):  # the reader went away: nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if debug:
            raise
        print_error(
            f"internal error: {type(exc).__name__}: {exc}",
            f"this is a bug in {prog}; {debug_var}=1 shows the traceback to report",
        )
        return 3


def run(
    app: typer.Typer,
    *,
    prog: str,
    errors: tuple[type[Exception], ...],
    debug_var: str,
    fast_exit: bool = False,
) -> NoReturn:
    """Run ``app`` on ``sys.argv`` and exit with the code the module docstring describes."""
    install_signal_handlers()
    _finish(outcome(app, prog=prog, errors=errors, debug_var=debug_var), fast_exit)
