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
