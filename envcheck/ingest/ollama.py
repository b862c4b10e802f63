"""ollama's server log as its issues paste it: one ``msg="inference compute"`` line per GPU the server
will use, naming the library (``library=cuda``, ``CUDA`` after 0.12), the compute capability
(``compute=8.6``), the CUDA version the driver reports (``driver=12.2``) and the GPU: ``name="NVIDIA
GeForce RTX 3090"`` up to 0.11, ``description="..."`` after (where ``name`` became ``CUDA0``).
ROCm, Vulkan and CPU lines (``library=rocm``, ``id=cpu``) state no NVIDIA facts. A journal or docker
prefix before ``time=`` does not matter.
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial, is_nvidia_name
from envcheck.ingest._text import Doc
from envcheck.ingest.nvidia_smi import cuda_int
from envcheck.models import Gpu, NvidiaInfo, Snapshot

__all__ = ["read"]

_LINE = re.compile(r"msg=\"?inference compute\"?(?P<rest>.*)$")
_KV = re.compile(r"(?P<key>\w+)=(?:\"(?P<quoted>[^\"]*)\"|(?P<bare>\S+))")
_CC = re.compile(r"^\d{1,2}\.\d$")
_GIB = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*GiB$")


def read(doc: Doc) -> list[Partial]:
    gpus: dict[str, Gpu] = {}
    ccs: dict[str, str] = {}
    driver_cuda: int | None = None
    first = None
    for ln in doc.lines:
        if "inference compute" not in ln.text or not (m := _LINE.search(ln.text)):
            continue
        kv = {k.group("key"): k.group("quoted") if k.group("quoted") is not None else k.group("bare")
              for k in _KV.finditer(m.group("rest"))}  # fmt: skip
        if (kv.get("library") or "").lower() != "cuda":
            continue
        name = kv.get("description") or kv.get("name") or ""
        if not is_nvidia_name(name):
            continue
        key = kv.get("id") or f"{name}#{len(gpus)}"
        first = first or ln.no
        if key not in gpus:
            gpu = Gpu(index=len(gpus), name=name, uuid=key if key.startswith("GPU-") else None)
            if total := _GIB.match(kv.get("total") or ""):
                gpu.memory_total_mib = round(float(total.group("n")) * 1024)
            gpus[key] = gpu
        if _CC.match(kv.get("compute") or ""):
            ccs.setdefault(name, kv["compute"])
        driver_cuda = driver_cuda or cuda_int(kv.get("driver"))
    if first is None:
        return []
    info = NvidiaInfo(gpus=list(gpus.values()), cuda_driver_version=driver_cuda)
    return [Partial("ollama-log", Snapshot(nvidia=info), first, gpu_ccs=ccs)]
