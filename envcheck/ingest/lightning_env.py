"""Lightning's ``collect_env_details.py`` (its bug template asks for it):

    * CUDA:
        - GPU:
                - NVIDIA A100-SXM4-40GB
        - available:         True
        - version:           11.7
    * Lightning:
        - torch:             2.0.1
    * System:
        - OS:                Linux

Older releases list ``pyTorch_version`` under "* Packages:". "version" under CUDA is
``torch.version.cuda``: None there means a build without CUDA (off macOS, where no build has it).
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial, is_nvidia_name, known, python_env, torch_local
from envcheck.ingest._text import Doc
from envcheck.ingest.packages import available
from envcheck.models import Framework, FrameworksInfo, Gpu, NvidiaInfo, Snapshot, SystemInfo

__all__ = ["read"]

_SECTION = re.compile(r"^\s*\*\s+(?P<name>[A-Za-z][\w ]*):\s*$")
_ITEM = re.compile(r"^(?P<indent>\s*)-\s+(?P<key>[^:]+?):\s*(?P<value>.*?)\s*$")
_LIST_ITEM = re.compile(r"^\s*-\s+(?P<value>[^:]+?)\s*$")
_OS = {"linux": "Linux", "windows": "Windows", "darwin": "Darwin"}


def read(doc: Doc) -> list[Partial]:
    lines = doc.lines
    for i, ln in enumerate(lines):
        m = _SECTION.match(ln.text)
        if not m or m.group("name").strip().upper() != "CUDA":
            continue
        sections: dict[str, dict[str, str]] = {}
        gpu_names: list[str] = []
        section = "CUDA"
        in_gpu_list = False
        for nxt in lines[i + 1 : i + 400]:
            text = nxt.text
            if sm := _SECTION.match(text):
                section, in_gpu_list = sm.group("name").strip(), False
                continue
            if im := _ITEM.match(text):
                key, value = im.group("key").strip(), im.group("value")
                sections.setdefault(section, {})[key.lower()] = value
                in_gpu_list = section == "CUDA" and key.lower() == "gpu" and not value
                continue
            if in_gpu_list and (lm := _LIST_ITEM.match(text)):
                gpu_names.append(lm.group("value"))
                continue
            if text.strip() and not text.startswith(("\t", " ")):
                break
        cuda = sections.get("CUDA", {})
        if "available" not in cuda and "version" not in cuda:
            continue
        return [_partial(cuda, sections, gpu_names, ln.no)]
    return []


def _partial(
    cuda: dict[str, str], sections: dict[str, dict[str, str]], names: list[str], first: int
) -> Partial:
    system_items = sections.get("System", {})
    os_name = _OS.get(system_items.get("os", "").strip().lower())
    system = None
    if os_name or system_items.get("python"):
        kernel = known(system_items.get("release")) if os_name == "Linux" else None
        system = SystemInfo(os=os_name, kernel=kernel, python=python_env(system_items.get("python")))
    packages = {**sections.get("Packages", {}), **sections.get("Lightning", {})}
    version = known(packages.get("torch") or packages.get("pytorch_version"))
    cuda_version = known(cuda.get("version"))
    flag = {"true": True, "false": False}.get(cuda.get("available", "").strip().lower())
    frameworks = []
    if version or cuda_version or flag is not None:
        build, from_tag, rocm = torch_local(version or "")
        if build is None and cuda_version:
            build = "cuda"
        elif build is None and "version" in cuda and cuda_version is None and os_name in ("Linux", "Windows"):
            build = "cpu"  # torch.version.cuda is None: a build without CUDA
        torch = Framework(name="torch", installed=True, distribution="torch", version=version, build=build,
                          cuda_build=cuda_version or from_tag, rocm_build=rocm)  # fmt: skip
        frameworks.append(available(torch, flag))
    gpus = [Gpu(index=i, name=n) for i, n in enumerate(names) if is_nvidia_name(n)]
    snap = Snapshot(
        system=system,
        nvidia=NvidiaInfo(gpus=gpus) if gpus else None,
        frameworks=FrameworksInfo(frameworks=frameworks) if frameworks else None,
    )
    return Partial("lightning-env", snap, first, gpu_inventory=bool(gpus))
