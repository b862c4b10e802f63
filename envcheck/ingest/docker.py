"""``docker info`` as pasted (usually ``docker info | grep -i runtime``): which runtimes the Docker
daemon knows. ``--gpus`` needs the ``nvidia`` one (or CDI); without it Docker answers
'could not select device driver "" with capabilities: [[gpu]]'.

Also ``nvidia-container-cli -k -d /dev/tty info``, which the NVIDIA container issue templates ask
for: the host driver as the hook sees it ("NVRM version:   384.130", "CUDA version:   9.0") and one
block per GPU ("Model:", "GPU UUID:", "Bus Location:", "Architecture:   3.5", the compute capability).
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial
from envcheck.ingest._text import Doc
from envcheck.ingest.nvidia_smi import cuda_int
from envcheck.models import Gpu, NvidiaInfo, NvmlStatus, Snapshot

__all__ = ["read"]

_RUNTIMES = re.compile(r"^\s*Runtimes:\s+(?P<list>\S.*?)\s*$")
_DEFAULT = re.compile(r"^\s*Default Runtime:\s+(?P<name>\S+)\s*$")


_CLI_KV = re.compile(
    r"^\s*(?P<key>NVRM version|CUDA version|Device Index|Model|GPU UUID|Bus Location|Architecture):\s+"
    r"(?P<value>\S.*?)\s*$"
)


def read(doc: Doc) -> list[Partial]:
    return [*_runtimes(doc), *_cli_info(doc)]


def _cli_info(doc: Doc) -> list[Partial]:
    """nvidia-container-cli's ``info``: the driver block, then a block per device."""
    driver = cuda = None
    first = None
    gpus: list[Gpu] = []
    for ln in doc.lines:
        if ":" not in ln.text or not (m := _CLI_KV.match(ln.text)):
            continue
        key, value = m.group("key"), m.group("value")
        if key == "NVRM version" and re.fullmatch(r"\d+(?:\.\d+)+", value):
            driver, first = driver or value, first or ln.no
        elif key == "CUDA version" and driver:
            cuda = cuda or cuda_int(value)
        elif key == "Device Index" and driver and value.isdigit():
            gpus.append(Gpu(index=int(value)))
        elif gpus and key == "Model":
            gpus[-1].name = value
        elif gpus and key == "GPU UUID":
            gpus[-1].uuid = value
        elif gpus and key == "Bus Location":
            gpus[-1].bus_id = value
        elif gpus and key == "Architecture" and re.fullmatch(r"\d{1,2}\.\d", value):
            gpus[-1].compute_capability = value
    if driver is None:
        return []
    info = NvidiaInfo(driver_version=driver, cuda_driver_version=cuda, gpus=gpus or None,
                      nvml=NvmlStatus(ok=True) if gpus else None)  # fmt: skip
    return [Partial("nvidia-container-cli-info", Snapshot(nvidia=info), first or 1, gpu_inventory=bool(gpus))]


def _runtimes(doc: Doc) -> list[Partial]:
    for i, ln in enumerate(doc.lines):
        m = _RUNTIMES.match(ln.text)
        if not m:
            continue
        runtimes = m.group("list").split()
        nearby = " ".join(x.text for x in doc.lines[max(0, i - 3) : i + 4])
        if not _DEFAULT.search(nearby) and "runc" not in runtimes:
            continue  # a "Runtimes:" line of something else
        return [Partial("docker-info", Snapshot(), ln.no, docker_runtimes=runtimes)]
    return []
