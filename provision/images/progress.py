"""Rich progress for builds: the current step, a bar per download/pull layer, elapsed time.

On a terminal it is a live display (the step, its downloads, the elapsed time); piped or in a
CI log nothing extra is printed unless ``--verbose``, which prints each step and every output
line of the build.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import TYPE_CHECKING

from provision.images.backends import BuildEvent

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


class BuildProgress:
    """Callable sink for BuildEvents; use as a context manager around a build."""

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose
        self.live = console.is_terminal and os.environ.get("TERM") != "dumb"
        self.steps = 0
        self._progress: Progress | None = None
        self._step_task: TaskID | None = None
        self._downloads: dict[str, TaskID] = {}

    def __enter__(self) -> BuildProgress:
        if self.live:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),
                BarColumn(bar_width=24),
                DownloadColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.__enter__()
            self._step_task = self._progress.add_task("starting build", total=None)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            if self._step_task is not None:
                done = "build failed" if exc_type else f"built in {self.steps} steps"
                self._progress.update(self._step_task, description=done, total=1, completed=1)
            for task in self._downloads.values():
                self._progress.remove_task(task)
            self._progress.__exit__(exc_type, exc, tb)

    def __call__(self, event: BuildEvent) -> None:
        if event.kind == "step":
            self.steps += 1
            where = f"{event.step}/{event.total} " if event.step and event.total else ""
            text = f"{where}{' '.join(event.text.split())}"[:100]
            if self._progress is not None and self._step_task is not None:
                self._progress.update(self._step_task, description=text)
            elif self.verbose:
                self.console.print(f"step {text}", highlight=False, markup=False)
        elif event.kind in {"download", "pull"} and event.size and self._progress is not None:
            key = event.key or event.text
            task = self._downloads.get(key)
            if task is None:
                task = self._progress.add_task(f"  {event.text[:40]}", total=event.size)
                self._downloads[key] = task
            self._progress.update(task, completed=event.current or 0, total=event.size)
        elif event.kind == "log" and self.verbose:
            self.console.print(event.text, style="dim", highlight=False, markup=False)
