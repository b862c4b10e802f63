"""The one-line environment banners popular apps print at start-up, pasted with their logs:

* Ultralytics and YOLOv5: "Ultralytics 8.3.0 🚀 Python-3.11.9 torch-2.4.1+cu121 CUDA:0 (NVIDIA GeForce
  RTX 4090, 24210MiB)", "YOLOv5 🚀 v7.0 Python-3.10.6 torch-1.13.1+cu116 CUDA:0 (Tesla T4, 15110MiB)",
  or "... torch-2.1.0+cpu CPU (Intel ...)";
* ComfyUI: "pytorch version: 2.1.0+cu121", "Device: cuda:0 NVIDIA GeForce RTX
  4090 : cudaMallocAsync" or "Device: xpu", "** Platform: Windows";
* Stable Diffusion web UI's footer: "version: v1.7.0 • python: 3.10.11 • torch: 2.0.1+cu118 • xformers: ...".

Each states the torch build (its local tag) and the device it ended up on.
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial, is_nvidia_name, python_env, torch_local
from envcheck.ingest._text import Doc
from envcheck.ingest.packages import available
from envcheck.models import Framework, FrameworksInfo, Gpu, NvidiaInfo, Snapshot, SystemInfo

__all__ = ["read"]

_ULTRALYTICS = re.compile(
    r"\bPython-(?P<py>\d+\.\d+(?:\.\d+)?)\s+torch-(?P<torch>\d+\.\d+[\w.+-]*)"
    r"(?:\s+(?P<device>CUDA:\d+|CPU|MPS)\b)?"
)
_CUDA_DEVICE = re.compile(r"\bCUDA:(?P<idx>\d+) \((?P<name>[^,()]+), (?P<mib>\d+)MiB\)")
_COMFY_DEVICE = re.compile(r"^\s*Device: (?P<dev>cuda:\d+|xpu|cpu|mps|privateuseone)(?::\d+)?(?P<rest>.*)$")
_COMFY_TORCH = re.compile(r"^\s*pytorch version: (?P<torch>\d+\.\d+[\w.+-]*)\s*$")
_COMFY_PLATFORM = re.compile(r"^\s*\*\* Platform: (?P<os>Windows|Linux|Darwin)\s*$")
_WEBUI = re.compile(
    r"\bversion: \S+\s+•\s+python: (?P<py>\d+\.\d+(?:\.\d+)?)\s+•\s+torch: (?P<torch>\d+\.\d+[\w.+-]*)"
)


def _torch(version: str, seen: bool | None = None, build: str | None = None) -> Framework:
    tag_build, cuda, rocm = torch_local(version)
    fw = Framework(name="torch", installed=True, distribution="torch", version=version,
                   build=build or tag_build, cuda_build=cuda, rocm_build=rocm)  # fmt: skip
    return available(fw, seen)


def read(doc: Doc) -> list[Partial]:
    out: list[Partial] = []
    for ln in doc.lines:
        text = ln.text
        if "torch-" in text and (m := _ULTRALYTICS.search(text)):
            gpus = [
                Gpu(
                    index=int(d.group("idx")),
                    name=d.group("name").strip(),
                    memory_total_mib=int(d.group("mib")),
                )
                for d in _CUDA_DEVICE.finditer(text)
                if is_nvidia_name(d.group("name"))
            ]
            device = m.group("device")
            seen = True if device and device.startswith("CUDA") else None
            snap = Snapshot(
                system=SystemInfo(python=python_env(m.group("py"))),
                nvidia=NvidiaInfo(gpus=gpus) if gpus else None,
                frameworks=FrameworksInfo(frameworks=[_torch(m.group("torch"), seen)]),
            )
            out.append(Partial("app-banner", snap, ln.no))
        elif "Device: " in text and (m2 := _COMFY_DEVICE.match(text)):
            dev = m2.group("dev")
            name = m2.group("rest").split(" : ", 1)[0].strip()
            gpus = (
                [Gpu(index=int(dev.split(":")[1]), name=name)]
                if dev.startswith("cuda") and is_nvidia_name(name)
                else []
            )
            build = "xpu" if dev == "xpu" else ("cuda" if dev.startswith("cuda") else None)
            fw = Framework(name="torch", installed=True, build=build)
            snap = Snapshot(
                nvidia=NvidiaInfo(gpus=gpus) if gpus else None,
                frameworks=FrameworksInfo(frameworks=[available(fw, True if build else None)]),
            )
            out.append(Partial("app-banner", snap, ln.no))
        elif "pytorch version: " in text and (m5 := _COMFY_TORCH.match(text)):
            fws = FrameworksInfo(frameworks=[_torch(m5.group("torch"))])
            out.append(Partial("app-banner", Snapshot(frameworks=fws), ln.no))
        elif "** Platform: " in text and (m3 := _COMFY_PLATFORM.match(text)):
            out.append(Partial("app-banner", Snapshot(system=SystemInfo(os=m3.group("os"))), ln.no))
        elif "torch: " in text and (m4 := _WEBUI.search(text)):
            snap = Snapshot(
                system=SystemInfo(python=python_env(m4.group("py"))),
                frameworks=FrameworksInfo(frameworks=[_torch(m4.group("torch"))]),
            )
            out.append(Partial("app-banner", snap, ln.no))
    return out
