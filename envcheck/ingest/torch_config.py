"""``torch.__config__.show()``: the "PyTorch built with:" block.

People paste it on its own, and OpenMMLab's and detectron2's ``collect_env`` embed it. It is the
build's own account of itself: "CUDA Runtime 11.3", the exact ``-gencode`` arch flags the wheel
was compiled for, the cuDNN it was built with, "HIP Runtime" for ROCm builds, and a "Build
settings" line with ``TORCH_VERSION=``, ``CUDA_VERSION=`` and ``USE_CUDA=``. Those arch flags are
the fact that tells "torch has no code for this GPU" from "another library's kernel has none".
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial
from envcheck.ingest._text import Doc
from envcheck.models import Framework, FrameworksInfo, Snapshot

__all__ = ["arch_flags", "read"]

_START = re.compile(r"PyTorch built with:\s*$")
_ITEM = re.compile(r"^\s*-\s+(?P<item>\S.*?)\s*$")
_CUDA_RUNTIME = re.compile(r"^CUDA Runtime (?P<v>\d+\.\d+)")
_HIP_RUNTIME = re.compile(r"^HIP Runtime (?P<v>\d+\.\d+)")
_CUDNN = re.compile(r"^(?:Built with )?CuDNN (?P<v>\d+(?:\.\d+)*)")
_SETTING = re.compile(r"\b(?P<key>TORCH_VERSION|CUDA_VERSION|CUDNN_VERSION|USE_CUDA|USE_ROCM)=(?P<v>[^,\s]+)")
#: "-gencode;arch=compute_37,code=sm_37" and "code=compute_90": the code each flag emits
_GENCODE = re.compile(r"code=\[?(?P<codes>(?:(?:sm|compute)_\d+[a-z]?,?)+)\]?")
#: a block lists a dozen items; a paste cut short still holds the ones before the cut
_MAX_ITEMS = 40


def arch_flags(text: str) -> list[str]:
    """The codes nvcc flags emit, in order and without repeats: "sm_37", "compute_37"."""
    out: list[str] = []
    for m in _GENCODE.finditer(text):
        for code in m.group("codes").split(","):
            if code and code not in out:
                out.append(code)
    return out


def read(doc: Doc) -> list[Partial]:
    out = []
    lines = doc.lines
    for i, ln in enumerate(lines):
        if "built with" not in ln.text or not _START.search(ln.text):
            continue
        items: list[str] = []
        for nxt in lines[i + 1 : i + 1 + _MAX_ITEMS]:
            m = _ITEM.match(nxt.text)
            if m is None:
                break
            items.append(m.group("item"))
        if (fw := _framework(items)) is not None:
            out.append(Partial("torch-config", Snapshot(frameworks=FrameworksInfo(frameworks=[fw])), ln.no))
    return out


def _framework(items: list[str]) -> Framework | None:
    if not items:
        return None
    cuda = rocm = cudnn = built_cudnn = version = None
    archs: list[str] = []
    settings: dict[str, str] = {}
    for item in items:
        if m := _CUDA_RUNTIME.match(item):
            cuda = m.group("v")
        elif m := _HIP_RUNTIME.match(item):
            rocm = m.group("v")
        elif item.startswith("NVCC architecture flags"):
            # the last item of a paste cut short may stop mid-list: only a flags line with items after it
            # (or ending on a whole code) is the whole list
            whole = item is not items[-1] or bool(re.search(r"code=\[?(?:sm|compute)_\d+[a-z]?\]?;?$", item))
            archs = arch_flags(item) if whole else []
        elif m := _CUDNN.match(item):
            if item.startswith("Built with"):
                built_cudnn = m.group("v")
            else:
                cudnn = m.group("v")
        elif item.startswith("Build settings"):
            settings = {m.group("key"): m.group("v") for m in _SETTING.finditer(item)}
    version = settings.get("TORCH_VERSION")
    cuda = cuda or _major_minor(settings.get("CUDA_VERSION"))
    build: str | None = None
    if rocm or settings.get("USE_ROCM", "").upper() in ("ON", "1"):
        build = "rocm"
    elif cuda or archs:
        build = "cuda"
    elif settings and settings.get("USE_CUDA", "OFF").upper() in ("OFF", "0"):
        build = "cpu"  # the build settings were printed whole and name no CUDA
    if build is None and version is None:
        return None
    return Framework(
        name="torch",
        installed=True,
        distribution="torch",
        version=version,
        build=build,
        cuda_build=cuda,
        cudnn_build=built_cudnn or cudnn or settings.get("CUDNN_VERSION"),
        rocm_build=rocm,
        arch_list=archs or None,
    )


def _major_minor(version: str | None) -> str | None:
    return ".".join(version.split(".")[:2]) if version and version[:1].isdigit() else None
