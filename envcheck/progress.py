"""Live progress for long commands (``smoke``, ``--deep``, ``bench``): what runs, and for how long.

Shown on stderr only when stderr is a terminal (and ``TERM`` is not ``dumb``); piped or in CI
nothing extra is printed, so logs and ``2>file`` stay clean. The display is transient: it is
erased when the work ends and the results take its place.

Tasks report through one callable, ``update(task, doing)``: ``doing`` is what the task runs
now ("cpu train", "importing"), ``None`` when it is finished. It may be called from any thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

#: ``update(task, doing)``; ``doing=None`` marks the task finished
Update = Callable[[str, "str | None"], None]


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


class LiveProgress:
    """Context manager; ``__enter__`` returns the update callable, or None when not on a terminal."""

    def __init__(self, title: str, console: Console | None = None, *, limit: float | None = None) -> None:
        self.title = title
        self.limit = limit
        self._console = console
        self._lock = threading.Lock()
        #: task -> (what it runs now, since when); and when each task began
        self._tasks: dict[str, tuple[str, float]] = {}
        self._began: dict[str, float] = {}
        self._done: dict[str, float] = {}
        self._start = time.perf_counter()
        self._live: Any = None

    @staticmethod
    def wanted(console: Console) -> bool:
        """Whether a live display belongs on this console (a terminal that can redraw)."""
        return console.is_terminal and os.environ.get("TERM") != "dumb"

    def __enter__(self) -> Update | None:
        from rich.console import Console
        from rich.live import Live

        console = self._console or Console(stderr=True, highlight=False, emoji=False)
        if not self.wanted(console):
            return None
        self._start = time.perf_counter()
        self._live = Live(self, console=console, transient=True, refresh_per_second=4)
        self._live.__enter__()
        return self.update

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def update(self, task: str, doing: str | None) -> None:
        """Record that ``task`` now runs ``doing`` (None: finished)."""
        now = time.perf_counter()
        with self._lock:
            began = self._began.setdefault(task, now)
            if doing is None:
                self._tasks.pop(task, None)
                self._done[task] = now - began
            else:
                self._tasks[task] = (doing, now)

    def __rich__(self) -> Any:
        from rich.text import Text

        now = time.perf_counter()
        head = f"{self.title} · {_seconds(now - self._start)}"
        if self.limit:
            head += f" of at most {_seconds(self.limit)}"
        text = Text(head, style="bold")
        with self._lock:
            running = sorted(self._tasks.items())
            done = sorted(self._done.items())
        for task, (doing, since) in running:
            text.append(f"\n  {task}: {doing} ({_seconds(now - since)})", style="cyan")
        if done:
            text.append("\n  done: " + ", ".join(f"{t} ({_seconds(s)})" for t, s in done), style="dim")
        return text
