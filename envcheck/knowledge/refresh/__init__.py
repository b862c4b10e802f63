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
#: the hand table of TensorFlow's tested build configurations (cuDNN minors the wheels do not record)
TENSORFLOW_TESTED = "tensorflow_tested.csv"


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
            _coverage(
                "torch_builds.csv",
                "torch",
                [r["release"] for r in release_rows],
                own,
                options,
                note=_torch_note(builds, release_rows),
            )
        )
        log.merge(own)
    if "tensorflow" in options.frameworks:
        own = derive.Log()
        tested = tables.read(options.data_dir / TENSORFLOW_TESTED)
        tf = derive.tensorflow_rows(reader, pypi, as_of=today, log=own, tested=tested)
        new["tensorflow_builds.csv"] = tf
        releases = list(dict.fromkeys(_mm(r["tensorflow"]) for r in tf))
        coverage.append(
            _coverage("tensorflow_builds.csv", "tensorflow", releases, own, options, note=TENSORFLOW_NOTE)
        )
        log.merge(own)
    if "jax" in options.frameworks:
        own = derive.Log()
        cuda_rows, jax_releases = derive.jax_rows(reader, pypi, old["jax_cuda.csv"], as_of=today, log=own)
        new["jax_cuda.csv"] = cuda_rows
        new["jax_releases.csv"] = jax_releases
        coverage.append(
            _coverage(
                "jax_releases.csv", "jax", [r["jax"] for r in jax_releases], own, options, note=JAX_NOTE
            )
        )
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


#: what the TensorFlow rows cannot cover
TENSORFLOW_NOTE = (
    "the CUDA build is tensorflow-gpu before 2.1 (tensorflow there is the CPU build); 1.0-1.4 wheels "
    "record no CUDA (no cuda_config.h), so they are not covered; windows native GPU builds end at 2.10"
)
#: what the JAX rows cannot cover (jaxlib on PyPI has no CUDA build at any version)
JAX_NOTE = (
    "jaxlib on PyPI is CPU-only; before the jax-cudaNN-plugin wheels (on PyPI from 0.4.22) jaxlib's "
    "CUDA builds (jaxlib==X+cuda11.cudnn86 ...) were published only at "
    "storage.googleapis.com/jax-releases, never on PyPI: those releases are not covered; "
    "jax-cuda11-plugin 0.4.22-0.4.25 is on PyPI but has no row (no driver floor recorded)"
)


def _torch_note(builds: list[tables.Row], release_rows: list[tables.Row]) -> str:
    """Which torch releases the rows know only partly: other CUDA variants, or the PyPI build's arch list."""
    unknown = [r["release"] for r in release_rows if r["other_variants"] == "unknown"]
    no_archs = [r["torch"] for r in builds if r["pypi_default"] == "1" and r["artifact"] and not r["archs"]]
    parts = []
    if unknown:
        parts.append("other CUDA variants unknown (PyPI build only) for " + " ".join(unknown))
    if no_archs:
        parts.append(
            "the PyPI wheel keeps no arch list (no arch-flags or -gencode string) for " + " ".join(no_archs)
        )
    return "; ".join(parts)


def _coverage(
    table: str, framework: str, releases: list[str], log: derive.Log, options: Options, *, note: str = ""
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
        "note": note,
        "source": f"scripts/refresh_knowledge.py reading {options.pypi}",
        "as_of": options.today,
    }


__all__ = ["FRAMEWORKS", "FetchError", "Options", "Result", "refresh"]
