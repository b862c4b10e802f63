"""bitsandbytes' bug report (``python -m bitsandbytes``, printed whenever its CUDA setup fails):

    CUDA SETUP: PyTorch settings found: CUDA_VERSION=118, Highest Compute Capability: 8.6.
    CUDA specs: CUDASpecs(highest_compute_capability=(8, 6), cuda_version_string='121', ...)
    bin C:\\...\\site-packages\\bitsandbytes\\libbitsandbytes_cpu.so

It states the CUDA torch was built with and the newest GPU's compute capability; the library path
says which OS it ran on. Its own "libcuda.so not found" hints are bitsandbytes' search, not proof
of a missing driver (releases before 0.43 look for the Linux library on Windows), so they are not
taken as facts.
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial
from envcheck.ingest._text import Doc
from envcheck.models import Framework, FrameworksInfo, Gpu, NvidiaInfo, Snapshot, SystemInfo

__all__ = ["read"]

_SETTINGS = re.compile(
    r"PyTorch settings found: CUDA_VERSION=(?P<cuda>\d{2,3}), Highest Compute Capability: \(?(?P<major>\d+)"
    r"[., ]+(?P<minor>\d)\)?"
)
_SPECS = re.compile(
    r"highest_compute_capability=\((?P<major>\d+), (?P<minor>\d+)\), cuda_version_string='(?P<cuda>\d{2,3})'"
)
_LIBRARY = re.compile(
    r"^\s*(?:bin|CUDA SETUP: Loading binary|bitsandbytes library load path:)\s+(?P<path>\S+)"
)
_MARKERS = ("BUG REPORT", "CUDA SETUP", "CUDA_SETUP", "CUDA specs", "bitsandbytes")


def read(doc: Doc) -> list[Partial]:
    if "bitsandbytes" not in doc.text and "CUDA SETUP" not in doc.text:
        return []
    cuda = cc = path = None
    first = None
    for ln in doc.lines:
        text = ln.text
        if not any(m in text for m in _MARKERS) and not text.lstrip().startswith("bin "):
            continue
        if m := _SETTINGS.search(text) or _SPECS.search(text):
            cuda = cuda or f"{m.group('cuda')[:-1]}.{m.group('cuda')[-1]}"
            cc = cc or f"{m.group('major')}.{m.group('minor')}"
            first = first or ln.no
        elif (m2 := _LIBRARY.match(text)) and "bitsandbytes" in m2.group("path"):
            path = path or m2.group("path")
            first = first or ln.no
    if first is None:
        return []
    windows = bool(path and re.match(r"^[A-Za-z]:\\", path))
    frameworks = None
    if cuda:
        torch = Framework(name="torch", installed=True, distribution="torch", build="cuda", cuda_build=cuda)
        frameworks = FrameworksInfo(frameworks=[torch])
    snap = Snapshot(
        system=SystemInfo(os="Windows") if windows else None,
        nvidia=NvidiaInfo(gpus=[Gpu(index=0, compute_capability=cc)]) if cc else None,
        frameworks=frameworks,
    )
    return [Partial("bitsandbytes", snap, first)]
