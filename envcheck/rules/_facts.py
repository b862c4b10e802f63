"""Questions many rules ask of a Snapshot, answered once: is there NVIDIA hardware, is there a
working driver, which CUDA does a framework need, what compute capability does each GPU have.

Each answer is tri-state where the Snapshot may not know: None means "the facts do not say",
which rules turn into a skip (``need``) rather than a verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from envcheck.knowledge import builds, capabilities
from envcheck.knowledge._version import cuda_mm, vtuple
from envcheck.models import Framework, Gpu, PciDevice, Snapshot
from envcheck.rules._base import MissingFacts, need

NVIDIA_VENDOR = "0x10de"
#: frameworks whose CUDA builds the rules judge, in report order
CUDA_FRAMEWORKS = ("torch", "tensorflow", "jax")
#: NVML return codes (nvmlReturn_t)
NVML_DRIVER_NOT_LOADED = 9
NVML_LIBRARY_NOT_FOUND = 12
NVML_LIB_RM_VERSION_MISMATCH = 18
NVML_UNKNOWN = 999

T = TypeVar("T")


def _is_nvidia(dev: PciDevice) -> bool:
    return dev.vendor_id.lower().removeprefix("0x") == "10de"


def gpu_pci(s: Snapshot) -> list[PciDevice] | None:
    """NVIDIA display/3D controllers on the PCI bus (NVSwitch bridges excluded); None if not probed."""
    if s.nvidia is None or s.nvidia.pci_devices is None:
        return None
    return [
        d
        for d in s.nvidia.pci_devices
        if _is_nvidia(d) and (d.class_id is None or d.class_id.lower().removeprefix("0x").startswith("03"))
    ]


def nvswitch_pci(s: Snapshot) -> list[PciDevice]:
    """NVSwitch bridges (PCI class 0x0680 from NVIDIA)."""
    if s.nvidia is None or not s.nvidia.pci_devices:
        return []
    return [
        d
        for d in s.nvidia.pci_devices
        if _is_nvidia(d) and (d.class_id or "").lower().removeprefix("0x").startswith("0680")
    ]


def has_nvidia_gpu(s: Snapshot) -> bool | None:
    """True when NVML, the PCI bus or a report lists an NVIDIA GPU; False when probes saw none."""
    n = s.nvidia
    if n is None:
        return None
    if n.gpus:
        return True
    pci = gpu_pci(s)
    if pci:
        return True
    if pci is not None:
        return False
    if n.gpus is not None and n.nvml is not None and n.nvml.ok:
        return False
    return None


def gpus_or_none_present(s: Snapshot) -> list[Gpu]:
    """NVML's GPU list; [] when the machine is known to have no NVIDIA GPU; skips the rule if unknown."""
    nv = need(s.nvidia, "NVIDIA facts")
    if nv.gpus is None and has_nvidia_gpu(s) is False:
        return []
    return need(nv.gpus, "GPU list")


def gpus_reporting(s: Snapshot, fact: Callable[[Gpu], T | None], what: str) -> list[tuple[Gpu, T]]:
    """Each GPU with the ``fact`` it reports (GPUs without it left out); skips the rule when no
    GPU reports it, since "unknown everywhere" must not read as "fine everywhere"."""
    gpus = gpus_or_none_present(s)
    known = [(g, value) for g in gpus if (value := fact(g)) is not None]
    if gpus and not known:
        raise MissingFacts(f"{what} unknown")
    return known


def gpus_with_cc(s: Snapshot) -> list[tuple[Gpu, tuple[int, int]]]:
    """NVML's GPUs whose compute capability is known, with it (none when NVIDIA facts are missing)."""
    gpus = (s.nvidia.gpus or []) if s.nvidia else []
    return [(g, cc) for g in gpus if (cc := gpu_cc(g))]


def in_container(s: Snapshot) -> bool | None:
    c = s.system.container if s.system else None
    if c is None:
        return None
    return bool(c.runtime) or bool(c.kubernetes)


def is_windows(s: Snapshot) -> bool:
    """Native Windows (WSL reports Linux)."""
    return bool(s.system and s.system.os == "Windows" and not is_wsl(s))


def is_wsl(s: Snapshot) -> bool | None:
    c = s.system.container if s.system else None
    return c.wsl if c else None


_JETSON = re.compile(r"\b(?:orin|xavier|jetson|tegra)\b", re.IGNORECASE)
#: L4T (Jetson Linux) images: nvcr.io/nvidia/l4t-pytorch:r35.2.1-pth2.0-py3, dustynv/ros:humble-l4t-r35.3.1,
#: jetson-containers' "whisper:r36.4.tegra-aarch64-cu126-22.04"
_L4T_IMAGE = re.compile(r"(?:[/:-]|\b)l4t[-:]|:r3\d\.\d[\w.]*[.-]tegra\b|\btegra-aarch64\b", re.IGNORECASE)


def is_jetson(s: Snapshot) -> bool:
    """An NVIDIA Jetson: NVIDIA's L4T kernel ("5.15.148-tegra"), a GPU named as one ("Orin (nvgpu)") or
    a pasted ``docker run`` of an L4T image.
    It always has its integrated NVIDIA GPU, which only NVIDIA's Jetson builds of a framework use."""
    kernel = s.system.kernel if s.system else None
    if kernel and "tegra" in kernel.lower():
        return True
    hint = s.paste.container_hint if s.paste else None
    if hint and _L4T_IMAGE.search(hint):
        return True  # a container of NVIDIA's L4T images runs on a Jetson only
    return any(_JETSON.search(g.name or "") for g in (s.nvidia.gpus or [] if s.nvidia else []))


def no_driver(s: Snapshot) -> bool:
    """No driver at all: cudaDriverGetVersion gave 0, or libcuda.so.1 is missing and NVML names no driver.

    With no driver the runtime *also* returns error 35 ("driver version is insufficient"), so
    this check must come before any "too old" verdict.
    """
    if s.cuda is None:
        return False
    if s.cuda.driver_version == 0:
        return True
    libcuda = next((lib for lib in s.cuda.libraries or [] if lib.name == "cuda"), None)
    nvml_driver = s.nvidia.driver_version if s.nvidia else None
    return libcuda is not None and libcuda.path is None and not nvml_driver


def driver_facts(s: Snapshot) -> tuple[str | None, int | None]:
    """(driver version, highest CUDA it supports as 12020) from NVML or the CUDA driver API."""
    version = s.nvidia.driver_version if s.nvidia else None
    ceiling = s.nvidia.cuda_driver_version if s.nvidia else None
    if not ceiling and s.cuda is not None and s.cuda.driver_version:
        ceiling = s.cuda.driver_version
    return version, ceiling or None


def frameworks(s: Snapshot) -> list[Framework]:
    """Installed frameworks the rules judge; skips the rule when the frameworks were not collected."""
    info = need(s.frameworks, "installed frameworks")
    return [f for f in info.frameworks if f.installed and f.name in CUDA_FRAMEWORKS]


def build_kind(fw: Framework) -> str | None:
    """ "cuda", "cpu", "rocm", "tpu"... from the static facts, the deep probe or the version tag."""
    if fw.build:
        return fw.build
    if fw.deep and fw.deep.ok and fw.deep.cuda_build:
        return "cuda"
    version = fw.version or ""
    if "+cpu" in version or fw.distribution == "tensorflow-cpu":
        return "cpu"
    if "+cu" in version:
        return "cuda"
    return None


def framework_cuda(fw: Framework) -> tuple[int, int] | None:
    """The CUDA a framework's build needs (major, minor); JAX plugins give the major only (minor 0)."""
    for value in (fw.deep.cuda_build if fw.deep else None, fw.cuda_build):
        mm = cuda_mm(value)
        if mm:
            return mm
    if "+cu" in (fw.version or ""):
        return cuda_mm((fw.version or "").split("+", 1)[1])
    return None


def cuda_text(fw: Framework, mm: tuple[int, int]) -> str:
    """How to say the CUDA a framework needs: "12.6", or "12.x" for JAX's plugin-only major."""
    if not cuda_minor_known(fw):
        return f"{mm[0]}.x"
    return f"{mm[0]}.{mm[1]}"


def cudart_serves(lib_version: str | None, built: tuple[int, int]) -> bool:
    """Can a libcudart of ``lib_version`` stand in for the CUDA ``built`` names? Before CUDA 11 the
    library name carries x.y (libcudart.so.10.1, cudart64_101.dll), so only that x.y; from 11 one
    soname (libcudart.so.11.0) serves the whole major. An unknown or bare-major version: no."""
    v = vtuple(lib_version)
    if v is None or len(v) < 2:
        return False
    return v[0] == built[0] if built[0] >= 11 else v[:2] == built


def torch_release_build(fw: Framework) -> builds.Build | None:
    """The PyTorch release-matrix row of an installed torch: its release, built for its CUDA."""
    if fw.name != "torch" or not fw.version:
        return None
    release, mm = builds.release_of("torch", fw.version), framework_cuda(fw)
    if not release:
        return None
    return next((b for b in builds.builds("torch", release) if b.cuda_mm == mm), None)


def version_pin(fw: Framework) -> str | None:
    """The installed release without its local tag: "2.6.0+cu124" -> "2.6.0"."""
    v = vtuple(fw.version)
    return ".".join(str(p) for p in v) if v else None


def gpu_cc(gpu: Gpu) -> tuple[int, int] | None:
    """A GPU's compute capability: NVML's answer, else the knowledge table for its name."""
    text = gpu.compute_capability or capabilities.compute_capability(gpu.name)
    if not text:
        return None
    v = vtuple(text)
    return (v[0], v[1] if len(v) > 1 else 0) if v else None


def gpu_subject(gpu: Gpu) -> str:
    return f"GPU {gpu.index}" + (f" ({gpu.name})" if gpu.name else "")


def python_version(s: Snapshot) -> str | None:
    py = s.system.python if s.system else None
    return py.version if py else None


def distro_is(s: Snapshot, *names: str) -> bool:
    distro = ((s.system.distro if s.system else None) or "").lower()
    return any(n in distro for n in names)


def driver_install_commands(s: Snapshot, minimum: str) -> list[str]:
    """How to install a driver at least ``minimum``: the distro's package where we know it. Under WSL
    the driver is the Windows one (a Linux driver must not be installed inside WSL), and Windows driver
    numbers are not Linux ones, so there the way is NVIDIA's Windows installer."""
    if is_wsl(s):
        return ["update the NVIDIA driver on Windows (nvidia.com/Download), not inside WSL", "wsl --shutdown"]
    if s.system and s.system.os == "Windows":
        return ["update the NVIDIA driver (nvidia.com/Download or the NVIDIA App), then reboot"]
    branch = max(580, int(minimum.split(".", maxsplit=1)[0]))
    if distro_is(s, "ubuntu"):
        return [f"sudo apt-get install -y nvidia-driver-{branch}", "sudo reboot"]
    return [f"install NVIDIA driver >= {minimum}"]


def cuda_minor_known(fw: Framework) -> bool:
    """False for JAX's plugin-only facts ("12" from jax-cuda12-plugin: any 12.x), where only the
    CUDA major is known; reads the same value ``framework_cuda`` uses."""
    if fw.name != "jax":
        return True
    for value in (fw.deep.cuda_build if fw.deep else None, fw.cuda_build):
        if cuda_mm(value):
            text = str(value).strip()
            return "." in text or (text.isdigit() and len(text) >= 4)
    return False
