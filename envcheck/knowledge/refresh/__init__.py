"""Rebuild envcheck's framework tables from the released wheels themselves.

``refresh(Options(...))`` reads the package indexes (PyPI's simple API, and PyPI's files with HTTP
byte ranges: METADATA, ``torch/version.py``, TensorFlow's ``build_info.py`` and the arch-flags
string of ``libtorch_python.so``, never whole wheels), and returns the new tables next to the
committed ones; ``Result.diff()`` is the reviewable change and ``Result.write()`` writes it.
Hand tables (driver floors, GPU specs, base-image tags) are not touched. ``scripts/refresh_knowledge.py``
is the command line; tests point the indexes at a loopback server.

Nothing here is imported by ``envcheck`` at run time.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from envcheck.knowledge.refresh import derive, tables
from envcheck.knowledge.refresh._cache import Cache
from envcheck.knowledge.refresh._http import Fetcher, FetchError
from envcheck.knowledge.refresh.index import PYPI, SimpleIndex
from envcheck.knowledge.refresh.wheel import WheelReader

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: PyTorch's own index: every CUDA variant (``torch-2.6.0+cu126-...``) under /whl/torch/
PYTORCH_INDEX = "https://download.pytorch.org/whl/"
FRAMEWORKS = ("torch", "tensorflow", "jax")


@dataclass
class Options:
    data_dir: Path = DATA_DIR
    pypi: str = PYPI
    #: None: do not try PyTorch's index
    pytorch_index: str | None = PYTORCH_INDEX
    cache_dir: Path | None = None
    frameworks: tuple[str, ...] = FRAMEWORKS
    timeout: float = 60.0
    today: str = field(default_factory=lambda: _dt.date.today().isoformat())


@dataclass
class Result:
    """New tables beside the committed ones, and what reading them cost."""

    options: Options
    new: dict[str, list[tables.Row]]
    old: dict[str, list[tables.Row]]
    log: derive.Log
    requests: int
    bytes_read: int
    cache_hits: int
    seconds: float

    def diff(self) -> dict[str, list[str]]:
        return {
            name: tables.diff(tables.SCHEMAS[name], self.old[name], rows) for name, rows in self.new.items()
        }

    def changed(self) -> list[str]:
        return [name for name, lines in self.diff().items() if lines]

    def write(self) -> list[Path]:
        """Write every table whose rows changed; returns the files written."""
        written = []
        for name in self.changed():
            path = self.options.data_dir / name
            tables.write(path, tables.render(tables.SCHEMAS[name], self.new[name]))
            written.append(path)
        return written


def refresh(options: Options) -> Result:
    """Read the indexes and derive every table; raises FetchError when PyPI itself is unreadable."""
    started = time.monotonic()
    fetcher = Fetcher(timeout=options.timeout)
    cache = Cache(options.cache_dir)
    reader = WheelReader(fetcher, cache)
    pypi = SimpleIndex(fetcher, options.pypi)
    variants = SimpleIndex(fetcher, options.pytorch_index) if options.pytorch_index else None
    log = derive.Log()
    old = {name: tables.read(options.data_dir / name) for name in tables.SCHEMAS}
    new: dict[str, list[tables.Row]] = {}
    coverage: list[tables.Row] = []
    today = options.today
    if "torch" in options.frameworks:
        own = derive.Log()
        builds, release_rows = derive.torch_rows(
            reader, pypi, variants, old["torch_builds.csv"], as_of=today, log=own
        )
        new["torch_builds.csv"] = builds
        new["torch_releases.csv"] = release_rows
        new["torch_companions.csv"] = derive.companion_rows(reader, pypi, as_of=today, log=own)
        coverage.append(
            _coverage("torch_builds.csv", "torch", [r["release"] for r in release_rows], own, options)
        )
        log.merge(own)
    if "tensorflow" in options.frameworks:
        own = derive.Log()
        tf = derive.tensorflow_rows(reader, pypi, as_of=today, log=own)
        new["tensorflow_builds.csv"] = tf
        releases = [_mm(r["tensorflow"]) for r in tf]
        coverage.append(_coverage("tensorflow_builds.csv", "tensorflow", releases, own, options))
        log.merge(own)
    if "jax" in options.frameworks:
        own = derive.Log()
        cuda_rows, jax_releases = derive.jax_rows(reader, pypi, old["jax_cuda.csv"], as_of=today, log=own)
        new["jax_cuda.csv"] = cuda_rows
        new["jax_releases.csv"] = jax_releases
        coverage.append(_coverage("jax_releases.csv", "jax", [r["jax"] for r in jax_releases], own, options))
        log.merge(own)
    if coverage:
        kept = [r for r in old["coverage.csv"] if r["framework"] not in {c["framework"] for c in coverage}]
        new["coverage.csv"] = sorted([*kept, *coverage], key=lambda r: r["table"])
    return Result(
        options=options,
        new=new,
        old=old,
        log=log,
        requests=fetcher.requests,
        bytes_read=fetcher.bytes_read,
        cache_hits=cache.hits,
        seconds=time.monotonic() - started,
    )


def _mm(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _coverage(
    table: str, framework: str, releases: list[str], log: derive.Log, options: Options
) -> tables.Row:
    read = sorted(base for base, why in log.indexes.items() if not why)
    unreachable = sorted(f"{base} ({why})" for base, why in log.indexes.items() if why)
    return {
        "table": table,
        "framework": framework,
        "releases": " ".join(releases),
        "newest": releases[-1] if releases else "",
        "indexes_read": " ".join(read),
        "indexes_unreachable": "; ".join(unreachable),
        "source": f"scripts/refresh_knowledge.py reading {options.pypi}",
        "as_of": options.today,
    }


__all__ = ["FRAMEWORKS", "FetchError", "Options", "Result", "refresh"]
