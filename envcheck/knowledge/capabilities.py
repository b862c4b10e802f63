"""Compute capability for a GPU *name* (pasted reports list names only; NVML gives the CC itself).

Asks the GPU spec table (``envcheck.knowledge.gpus``) first, then falls back to the generation
patterns in ``data/compute_capabilities.csv``; None means "unknown", never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from envcheck.knowledge._table import rows


@dataclass(frozen=True)
class Generation:
    pattern: re.Pattern[str]
    compute_capability: str
    architecture: str
    examples: str
    source: str
    as_of: str


@cache
def generations() -> tuple[Generation, ...]:
    """The name patterns, in matching order (specific before general)."""
    return tuple(
        Generation(
            re.compile(r["pattern"], re.IGNORECASE),
            r["compute_capability"],
            r["architecture"],
            r["examples"],
            r["source"],
            r["as_of"],
        )
        for r in rows("compute_capabilities.csv")
    )


def _spec_cc(name: str) -> str | None:
    try:
        from envcheck.knowledge import gpus  # written by the GPU-spec owner; may not exist yet
    except ImportError:
        return None
    lookup = getattr(gpus, "lookup", None)
    if lookup is None:
        return None
    try:
        spec = lookup(name)
    except Exception:  # a spec-table bug must not cost a verdict that the fallback can give
        return None
    cc = getattr(spec, "compute_capability", None) if spec is not None else None
    return str(cc) if cc else None


def compute_capability(name: str | None) -> str | None:
    """ "NVIDIA GeForce RTX 4090" -> "8.9"; None when neither table knows the name."""
    if not name:
        return None
    cc = _spec_cc(name)
    if cc:
        return cc
    for gen in generations():
        if gen.pattern.search(name):
            return gen.compute_capability
    return None


@dataclass(frozen=True)
class SupportEnd:
    """Where support for one old GPU generation ended (``data/gpu_support_ends.csv``)."""

    cc_min: tuple[int, int]
    cc_max: tuple[int, int]
    architecture: str
    #: the last CUDA toolkit that compiles for it
    last_cuda: tuple[int, int]
    #: the last driver branch that supports it ("470")
    last_driver_branch: str
    #: the last PyTorch release whose binaries carry its code; None: never; "current": still served
    torch_last: str | None
    torch_note: str
    source: str
    as_of: str

    @property
    def still_served(self) -> bool:
        return self.torch_last == "current"


def _mm(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


@cache
def support_ends() -> tuple[SupportEnd, ...]:
    return tuple(
        SupportEnd(
            _mm(r["cc_min"]),
            _mm(r["cc_max"]),
            r["architecture"],
            _mm(r["last_cuda"]),
            r["last_driver_branch"],
            r["torch_last"] or None,
            r["torch_note"],
            r["source"],
            r["as_of"],
        )
        for r in rows("gpu_support_ends.csv")
    )


def support_end(cc: tuple[int, int]) -> SupportEnd | None:
    """The support-end row for compute capability ``cc``; None for generations not listed (newer)."""
    return next((e for e in support_ends() if e.cc_min <= cc <= e.cc_max), None)
