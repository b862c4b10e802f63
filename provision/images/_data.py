"""The image-specific tables in ``provision/images/data`` (base image tags, OS Pythons, default pins).

Framework <-> CUDA <-> cuDNN <-> driver facts are NOT here: they come from envcheck's knowledge
base. These tables hold only what an image needs on top (which ``nvidia/cuda`` tags exist, which
Python an OS ships); each row carries ``source`` and ``as_of`` and loading refuses rows without.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from envcheck.knowledge._table import KnowledgeError, parse
from envcheck.knowledge._version import cuda_mm, vtuple


class DataError(ValueError):
    """A packaged data file is malformed (a packaging bug, never the user's fault)."""


@cache
def _rows(name: str) -> tuple[dict[str, str], ...]:
    text = resources.files("provision.images").joinpath("data").joinpath(name).read_text("utf-8")
    try:
        return parse(text, name)  # provenance checked as for every fact table
    except KnowledgeError as exc:
        raise DataError(str(exc)) from None


@dataclass(frozen=True)
class CudaBase:
    """The ``nvidia/cuda`` images published for one CUDA major.minor."""

    cuda: tuple[int, int]
    tag_version: str
    oses: tuple[str, ...]
    source: str
    as_of: str
    #: the cuDNN part of the tag: "cudnn8" (to 12.2), "cudnn9" (12.3), "cudnn" (12.4 on)
    cudnn: str = "cudnn"

    def image(self, flavour: str, os: str) -> str:
        """The tag for a flavour ("base", "runtime", "devel", "cudnn-runtime", "cudnn-devel")."""
        if flavour.startswith("cudnn-"):
            flavour = f"{self.cudnn}-{flavour.removeprefix('cudnn-')}"
        return f"nvidia/cuda:{self.tag_version}-{flavour}-{os}"


@dataclass(frozen=True)
class OsPython:
    """A Python the base OS ships as an apt package."""

    os: str
    python: str
    default: bool
    cpu_image: str
    preference: int
    source: str
    as_of: str


@cache
def cuda_bases() -> tuple[CudaBase, ...]:
    out = []
    for r in _rows("cuda_base_images.csv"):
        mm = cuda_mm(r["cuda"])
        if mm is None:
            raise DataError(f"cuda_base_images.csv: bad CUDA {r['cuda']!r}")
        oses = tuple(r["os"].split())
        out.append(CudaBase(mm, r["tag_version"], oses, r["source"], r["as_of"], r.get("cudnn") or "cudnn"))
    return tuple(sorted(out, key=lambda b: b.cuda))


def cuda_base(cuda: tuple[int, int]) -> CudaBase | None:
    return next((b for b in cuda_bases() if b.cuda == cuda), None)


@cache
def os_pythons() -> tuple[OsPython, ...]:
    out = [
        OsPython(
            r["os"],
            r["python"],
            r["default"] == "1",
            r["cpu_image"],
            int(r["preference"]),
            r["source"],
            r["as_of"],
        )
        for r in _rows("os_pythons.csv")
    ]
    return tuple(sorted(out, key=lambda p: p.preference))


def pin(package: str) -> tuple[str, str, str]:
    """(version, source, as_of) of mlrig's default pin for ``package``."""
    for r in _rows("pins.csv"):
        if r["package"] == package:
            return r["version"], r["source"], r["as_of"]
    raise DataError(f"pins.csv: no pin for {package}")


def python_key(version: str) -> tuple[int, ...]:
    return vtuple(version) or ()
