"""``nvcc --version``: "Cuda compilation tools, release 11.7, V11.7.99". That is the toolkit on
PATH, not the CUDA a framework runs with (frameworks bring their own runtime)."""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial
from envcheck.ingest._text import Doc
from envcheck.models import CudaInfo, Snapshot

__all__ = ["read"]

_RELEASE = re.compile(r"Cuda compilation tools, release (?P<mm>\d+\.\d+), V(?P<v>\d+(?:\.\d+)+)")


def read(doc: Doc) -> list[Partial]:
    out: list[Partial] = []
    for m in _RELEASE.finditer(doc.text):
        out.append(
            Partial("nvcc", Snapshot(cuda=CudaInfo(nvcc_version=m.group("v"))), doc.line_no(m.start()) or 1)
        )
    return out
