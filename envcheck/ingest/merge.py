"""Join what each recogniser found into one Snapshot, whatever order and number of dumps.

When two dumps state the same fact the more direct source wins (``nvidia-smi`` over
collect_env's copy of it, collect_env over a package list, any dump over an error line) and the
disagreement is kept in ``PasteInfo.conflicts``: a report that mixes two machines says so instead
of silently blending them. GPUs are matched by index and name, frameworks by name.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from envcheck.ingest._partial import Partial
from envcheck.knowledge import builds
from envcheck.models import Framework, Gpu, NvidiaInfo, PasteInfo, Snapshot

__all__ = ["PRIORITY", "merge"]

#: most direct source first
PRIORITY = (
    "envcheck-json", "nvidia-smi-q", "nvidia-smi", "collect_env", "vllm-collect-env", "torch-config",
    "nvidia-smi-L", "transformers-env", "accelerate-env", "diffusers-env", "huggingface-cli-env", "mmcv-env",
    "detectron2-env", "lightning-env", "jax-env", "tf-build-info", "tf-env-collect", "python-repl",
    "tf-issue-template", "tf-log", "app-banner", "ollama-log", "bitsandbytes", "pip-freeze", "pip-list",
    "conda-list", "versions", "install-command", "nvcc", "lscpu", "os-release", "uname", "lsmod", "dmesg",
    "docker-info", "nvidia-container-cli-info", "shell", "log",
)  # fmt: skip
_DUMPS_FIRST = ("collect_env", "vllm-collect-env")


#: builds that have no CUDA: one source saying "cpu" and another "xpu" agree that CUDA is absent
_NOT_CUDA = {"cpu", "xpu", "rocm", "mps"}


def _empty(value: Any) -> bool:
    return value is None or value in ([], {})


def _gpu_name(name: str | None) -> str:
    n = (name or "").lower().replace("nvidia ", "").replace("geforce ", "").replace("tesla ", "")
    return re.sub(r"\s+", " ", n.replace("...", "")).strip()


def same_gpu(a: str | None, b: str | None) -> bool:
    """Two spellings of one GPU model ("NVIDIA GeForce RTX 5090 D" / "GeForce RTX 5090 D", or a name
    nvidia-smi cut with "...")."""
    x, y = _gpu_name(a), _gpu_name(b)
    if not x or not y:
        return True
    return (
        x == y
        or ((a or "").endswith("...") and y.startswith(x))
        or ((b or "").endswith("...") and x.startswith(y))
    )


def _merge_gpus(a: list[Gpu], b: list[Gpu], conflicts: list[str]) -> None:
    for gpu in b:
        match = next((g for g in a if g.index == gpu.index), None)
        if match is None:
            a.append(gpu)
        elif same_gpu(match.name, gpu.name):
            if match.name and gpu.name and match.name.endswith("...") and not gpu.name.endswith("..."):
                match.name = gpu.name  # the full name over a cut one
            _merge(match, gpu, f"nvidia.gpus[{gpu.index}].", conflicts)
        else:
            conflicts.append(f"nvidia.gpus[{gpu.index}].name: {match.name} vs {gpu.name}")


def _merge_frameworks(a: list[Framework], b: list[Framework], conflicts: list[str]) -> None:
    for fw in b:
        match = next((f for f in a if f.name == fw.name), None)
        if match is None:
            a.append(fw)
        else:
            _merge(match, fw, f"frameworks.{fw.name}.", conflicts)


def _merge(a: msgspec.Struct, b: msgspec.Struct, path: str, conflicts: list[str]) -> None:
    """Fill ``a``'s unknown fields from ``b`` (in place); record where both know and disagree."""
    for name in a.__struct_fields__:
        if name == "source":
            continue
        va, vb = getattr(a, name), getattr(b, name)
        if _empty(vb):
            continue
        if _empty(va):
            setattr(a, name, vb)
        elif isinstance(va, msgspec.Struct) and isinstance(vb, msgspec.Struct):
            _merge(va, vb, f"{path}{name}.", conflicts)
        elif name == "gpus":
            _merge_gpus(va, vb, conflicts)
        elif name == "frameworks" and isinstance(va, list):
            _merge_frameworks(va, vb, conflicts)
        elif isinstance(va, dict) and isinstance(vb, dict):
            for k, v in vb.items():
                va.setdefault(k, v)
        elif name == "installed":
            setattr(a, name, bool(va or vb))
        elif name == "build" and {va, vb} <= _NOT_CUDA:
            continue  # "Torch not compiled with CUDA enabled" (read as cpu) beside a dump's XPU or ROCm build
        elif va != vb and not (isinstance(va, str) and isinstance(vb, str) and _same_version(va, vb)):
            conflicts.append(f"{path}{name}: {va} vs {vb}")


def _same_version(a: str, b: str) -> bool:
    """ "2.0.1+cu118" and "2.0.1" state the same release; the longer spelling is kept."""
    return a.startswith(b) or b.startswith(a)


def _attach_ccs(snapshot: Snapshot, ccs: dict[str, str]) -> None:
    """Give each GPU the compute capability an error line stated for its name."""
    for name, cc in ccs.items():
        nv = snapshot.nvidia or NvidiaInfo()
        gpus = nv.gpus or []
        hits = [g for g in gpus if g.name and same_gpu(g.name, name)]
        for g in hits:
            g.compute_capability = g.compute_capability or cc
        if not gpus:
            nv.gpus = [Gpu(index=0, name=name, compute_capability=cc)]
            snapshot.nvidia = nv


#: TensorFlow's install guide (tensorflow/docs site/en/install/pip.md): "TensorFlow 2.10 was the last
#: TensorFlow release that supported GPU on native Windows"; from 2.11 the Windows package is a CPU build
_TF_LAST_WINDOWS_GPU = (2, 10)


def _derive(snapshot: Snapshot) -> None:
    """Facts that follow from others and a published rule: TensorFlow after 2.10 on native Windows
    is a CPU build, whatever the user installed CUDA for; a TensorFlow CUDA build of a release the
    tables hold was built with that release's one CUDA (and cuDNN)."""
    system, fws = snapshot.system, snapshot.frameworks
    for fw in fws.frameworks if fws else []:
        if fw.name == "tensorflow" and fw.build == "cuda" and not fw.cuda_build and fw.version:
            release = builds.release_of("tensorflow", fw.version)
            rows = builds.builds("tensorflow", release) if release else []
            if len(rows) == 1:  # PyPI's Linux wheel: one CUDA per release
                fw.cuda_build = rows[0].cuda
                fw.cudnn_build = fw.cudnn_build or rows[0].cudnn
    if system is None or system.os != "Windows" or (system.container and system.container.wsl) or fws is None:
        return
    for fw in fws.frameworks:
        version = tuple(int(p) for p in re.findall(r"\d+", fw.version or "")[:2])
        if (
            fw.name == "tensorflow"
            and fw.build is None
            and len(version) == 2
            and version > _TF_LAST_WINDOWS_GPU
        ):
            fw.build = "cpu"


def merge(partials: list[Partial]) -> Snapshot:
    """One Snapshot (with ``paste`` set) from every recogniser's findings."""
    ordered = sorted(partials, key=lambda p: (PRIORITY.index(p.kind) if p.kind in PRIORITY else 99, p.line))
    complete = any(
        p.gpu_inventory and not p.truncated and p.snapshot.nvidia and p.snapshot.nvidia.gpus is not None
        for p in partials
    )  # fmt: skip (before merging: merging fills the partials' sections)
    merged = Snapshot()
    conflicts: list[str] = []
    for p in ordered:
        _merge(merged, p.snapshot, "", conflicts)
    ccs: dict[str, str] = {}
    for p in ordered:
        for name, cc in p.gpu_ccs.items():
            ccs.setdefault(name, cc)
    _attach_ccs(merged, ccs)
    _derive(merged)
    by_line = sorted(partials, key=lambda p: p.line)
    kinds: list[str] = []
    for p in by_line:
        if p.kind not in kinds:
            kinds.append(p.kind)
    source = next((k for k in _DUMPS_FIRST if k in kinds), None)
    source = "collect_env" if source else next((k for k in kinds if k not in ("shell", "log")), "paste")
    merged.source = source
    gpus_known = bool(merged.nvidia and merged.nvidia.gpus)
    merged.paste = PasteInfo(
        kinds=kinds,
        lines=[ln for p in by_line for ln in p.lines],
        truncated=any(p.truncated for p in partials) or None,
        conflicts=conflicts,
        container_hint=next((p.container_hint for p in by_line if p.container_hint), None),
        docker_runtimes=next((p.docker_runtimes for p in by_line if p.docker_runtimes is not None), None),
        gpu_wanted=next((p.gpu_wanted for p in by_line if p.gpu_wanted), None),
        stated_cuda=next((p.stated_cuda for p in by_line if p.stated_cuda), None),
        stated_cudnn=next((p.stated_cudnn for p in by_line if p.stated_cudnn), None),
        gpus_complete=complete if gpus_known else None,
    )
    return merged
