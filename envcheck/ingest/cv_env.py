"""The computer-vision toolkits' ``collect_env``: OpenMMLab's (mmcv/mmengine, printed by
``mmdet/utils/collect_env.py`` and every OpenMMLab issue template) and detectron2's
(``python -m detectron2.utils.collect_env``).

OpenMMLab prints "Key: value" lines ("sys.platform: linux", "GPU 0,1: Tesla V100-PCIE-32GB",
"NVCC: Cuda compilation tools, release 10.2", "PyTorch: 1.6.0"); detectron2 prints the same facts
as a two-column table ("PyTorch   1.10.0+cu113 @/path", "GPU 0   NVIDIA GeForce RTX 3090
(arch=8.6)", "Driver version   470.57.02"). Both embed "PyTorch built with:", which
``torch_config`` reads. "GPU 0,1: NAME" names two GPUs of one model.
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial, is_nvidia_name, known, python_env, torch_local
from envcheck.ingest._text import Doc
from envcheck.ingest.packages import available
from envcheck.models import CudaInfo, Framework, FrameworksInfo, Gpu, NvidiaInfo, Snapshot, SystemInfo

__all__ = ["read"]

#: keys both tools print (lower-cased), and the tool only one of them prints
_KEYS = (
    "sys.platform", "python", "cuda available", "gpu available", "cuda_home", "nvcc", "gcc", "msvc",
    "pytorch", "pytorch debug build", "torchvision", "opencv", "mmcv", "mmengine", "mmcv compiler",
    "mmcv cuda compiler", "mmdetection", "detectron2", "driver version", "compiler", "cuda compiler",
    "numpy", "pillow", "fvcore", "iopath", "cv2", "detectron2_env_module",
)  # fmt: skip
_KEY = re.compile(
    r"^\s*(?P<key>GPU \d+(?:,\s?\d+)*|"
    + "|".join(re.escape(k) for k in sorted(_KEYS, key=len, reverse=True))
    + r")(?P<sep>\s*:\s*|\s{2,})(?P<value>\S.*?)\s*$",
    re.IGNORECASE,
)
_NVCC = re.compile(r"release (?P<v>\d+\.\d+)(?:, V(?P<full>\d+\.\d+\.\d+))?|cuda_(?P<b>\d+\.\d+)\.r")
_ARCH = re.compile(r"\s*\(arch=(?P<cc>\d+\.\d+)\)\s*$")
_PLATFORMS = {"linux": "Linux", "win32": "Windows", "darwin": "Darwin"}
#: a block has these lines within a few of each other
_WINDOW = 40


def read(doc: Doc) -> list[Partial]:
    out: list[Partial] = []
    lines = doc.lines
    i = 0
    while i < len(lines):
        m = _KEY.match(lines[i].text)
        if not m or m.group("key").lower() != "sys.platform":
            i += 1
            continue
        fields: dict[str, str] = {}
        gpus: list[tuple[str, str]] = []
        colon = ":" in m.group("sep")
        end = i
        for j in range(i, min(len(lines), i + _WINDOW)):
            km = _KEY.match(lines[j].text)
            if km is None:
                continue
            key = km.group("key")
            if key.lower() == "sys.platform" and j != i:
                break
            end = j
            if key.upper().startswith("GPU ") and key[4:5].isdigit():
                gpus.append((key[4:], km.group("value")))
            else:
                fields.setdefault(key.lower(), km.group("value"))
        if "pytorch" in fields or "cuda available" in fields or "gpu available" in fields:
            tool = "detectron2-env" if ("detectron2" in fields and not colon) else "mmcv-env"
            out.append(_partial(tool, fields, gpus, lines[i].no))
        i = end + 1
    return out


def _partial(kind: str, f: dict[str, str], gpus: list[tuple[str, str]], first: int) -> Partial:
    platform = _PLATFORMS.get(f.get("sys.platform", "").strip().lower())
    py = python_env(f.get("python"))
    system = SystemInfo(os=platform, python=py) if platform or py else None
    frameworks = []
    if version := known((f.get("pytorch") or "").split(" @", 1)[0]):
        build, cuda, rocm = torch_local(version)
        torch = Framework(name="torch", installed=True, distribution="torch", version=version.split()[0],
                          build=build, cuda_build=cuda, rocm_build=rocm)  # fmt: skip
        flag = f.get("cuda available", f.get("gpu available", "")).strip().lower()
        seen = (
            True
            if flag.startswith(("true", "yes"))
            else (False if flag.startswith(("false", "no")) else None)
        )
        frameworks.append(available(torch, seen))
    listed: list[Gpu] = []
    for indices, raw in gpus:
        cc = m.group("cc") if (m := _ARCH.search(raw)) else None
        name = _ARCH.sub("", raw).strip()
        if not is_nvidia_name(name):
            continue
        for idx in re.findall(r"\d+", indices):
            listed.append(Gpu(index=int(idx), name=name, compute_capability=cc))
    driver = known(f.get("driver version"))
    nvidia = None
    if listed or driver:
        nvidia = NvidiaInfo(driver_version=driver if driver and driver[:1].isdigit() else None,
                            gpus=sorted(listed, key=lambda g: g.index) or None)  # fmt: skip
    nvcc = _nvcc(f.get("nvcc"))
    home = known(f.get("cuda_home"))
    snap = Snapshot(
        system=system,
        nvidia=nvidia,
        cuda=CudaInfo(nvcc_version=nvcc, cuda_home=home) if nvcc or home else None,
        frameworks=FrameworksInfo(frameworks=frameworks) if frameworks else None,
    )
    return Partial(kind, snap, first, gpu_inventory=bool(listed))


def _nvcc(value: str | None) -> str | None:
    """ "Cuda compilation tools, release 10.2, V10.2.89" -> "10.2.89"; "Build cuda_11.5.r11.5/..." ->
    "11.5"."""
    if not (v := known(value)):
        return None
    m = _NVCC.search(v)
    if m is None:
        return None
    return m.group("full") or m.group("v") or m.group("b")
