"""Which CUDA releases know a GPU's compute capability (CC), from ``data/cuda_arch_support.csv``.

Why it matters beside the arch list: a framework build ships CUDA math libraries (cuBLAS, cuDNN, ...)
compiled by its CUDA release. Those libraries carry code only for the architectures that release
knew, so PTX JIT of the framework's own kernels does not make the build usable: TensorFlow 2.21.0
carries ``compute_90`` and still cannot drive an RTX 5090 (CC 12.0 needs CUDA >= 12.8; it is built
with 12.5). At the other end, CUDA 12 dropped Kepler and CUDA 13 dropped everything below 7.5.

The lower bound honours binary compatibility (``envcheck.knowledge.archs.runs_on``): a release that
knows 8.0 runs on 8.6 and 8.9 through sm_80 SASS, one that knows 12.0 runs on 12.1. The upper bound
is the CC's own row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from envcheck.knowledge import archs
from envcheck.knowledge._table import rows

CudaMM = tuple[int, int]


@dataclass(frozen=True)
class Support:
    """One row: the CUDA releases that target one compute capability."""

    cc: CudaMM
    architecture: str
    #: first CUDA release with code for this CC (None: before the releases tracked)
    min_cuda: CudaMM | None
    #: last CUDA release that still supports it (None: still supported)
    max_cuda: CudaMM | None
    source: str
    as_of: str


@dataclass(frozen=True)
class Window:
    """The CUDA releases whose libraries run on one GPU; None ends are unknown or open."""

    cc: CudaMM
    min_cuda: CudaMM | None
    max_cuda: CudaMM | None
    #: the row that sets ``min_cuda`` (8.0 for an 8.9 GPU: binary compatibility), for messages
    min_from: CudaMM | None = None


@dataclass(frozen=True)
class Fit:
    """Whether a build's CUDA can drive a GPU: ok True/False, or None when the facts do not say."""

    ok: bool | None
    window: Window
    #: why not, in words ("compute capability 12.0 needs CUDA >= 12.8"); "" when ok is not False
    reason: str = ""


def _mm(text: str) -> CudaMM | None:
    if not text:
        return None
    cc = archs.parse_cc(text)
    if cc is None:
        raise ValueError(f"cuda_arch_support.csv: not a major.minor version: {text!r}")
    return cc


@cache
def table() -> tuple[Support, ...]:
    """Every row, ordered by compute capability."""
    out = []
    for r in rows("cuda_arch_support.csv"):
        cc = _mm(r["compute_capability"])
        assert cc is not None, r
        out.append(
            Support(cc, r["architecture"], _mm(r["min_cuda"]), _mm(r["max_cuda"]), r["source"], r["as_of"])
        )
    return tuple(sorted(out, key=lambda s: s.cc))


def support(cc: CudaMM) -> Support | None:
    """The row for exactly ``cc``; None when the table does not know it."""
    return next((s for s in table() if s.cc == cc), None)


@cache
def window(cc: CudaMM) -> Window:
    """The CUDA releases that can run code on a GPU of compute capability ``cc``.

    The minimum is the earliest release that knows ``cc`` or an older CC whose SASS runs on it.
    Unknown (None) when no row applies, so a future GPU never gets a guessed verdict.
    """
    own = support(cc)
    lows = [
        (s.min_cuda, s.cc)
        for s in table()
        if s.min_cuda is not None and archs.runs_on(archs.Code("sm", s.cc), cc)
    ]
    low = min(lows) if lows else None
    return Window(
        cc,
        low[0] if low else None,
        own.max_cuda if own else None,
        low[1] if low else None,
    )


def fits(cuda: CudaMM, cc: CudaMM, *, major_only: bool = False) -> Fit:
    """Can code built with CUDA ``cuda`` (its libraries included) run on a GPU of CC ``cc``?

    ``major_only``: only the CUDA major is known (a JAX ``cuda12`` plugin): False only when no minor
    of that major could fit, None when some could.
    """
    w = window(cc)
    cc_text = f"{cc[0]}.{cc[1]}"
    if w.min_cuda is not None:
        too_old = cuda[0] < w.min_cuda[0] if major_only else cuda < w.min_cuda
        if too_old:
            return Fit(False, w, f"compute capability {cc_text} needs CUDA >= {_text(w.min_cuda)}")
    if w.max_cuda is not None:
        too_new = cuda[0] > w.max_cuda[0] if major_only else cuda > w.max_cuda
        if too_new:
            last = f"CUDA {_text(w.max_cuda)} was the last release for compute capability {cc_text}"
            return Fit(False, w, last)
    if w.min_cuda is None and support(cc) is None:
        return Fit(None, w)  # a GPU the table does not know: never a guessed verdict
    if major_only and w.min_cuda is not None and cuda[0] == w.min_cuda[0] and cuda < w.min_cuda:
        return Fit(None, w)  # e.g. "12" for a GPU that needs 12.8: depends on the minor
    return Fit(True, w)  # an empty min_cuda means "since before the releases tracked"


def _text(mm: CudaMM) -> str:
    return f"{mm[0]}.{mm[1]}"
