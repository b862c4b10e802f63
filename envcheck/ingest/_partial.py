"""What one recogniser found in a paste, and the small readers several recognisers share.

A recogniser returns ``Partial``s: a Snapshot holding only the facts its dump states (every other
section None) plus where the dump began. ``envcheck.ingest.merge`` joins them into one Snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from envcheck.models import ContainerInfo, PastedLine, PythonEnv, Snapshot, SystemInfo

#: every dump kind a recogniser can report, for PasteInfo.kinds and the corpus manifest
KINDS = (
    "envcheck-json", "collect_env", "vllm-collect-env", "torch-config", "transformers-env", "accelerate-env",
    "diffusers-env", "huggingface-cli-env", "mmcv-env", "detectron2-env", "lightning-env", "tf-env-collect",
    "tf-build-info", "tf-issue-template", "tf-log", "jax-env", "python-repl", "app-banner", "ollama-log",
    "bitsandbytes", "versions", "install-command",
    "nvidia-smi", "nvidia-smi-q", "nvidia-smi-L", "nvcc", "pip-list", "pip-freeze", "conda-list",
    "lscpu", "os-release", "uname", "lsmod", "dmesg", "docker-info", "nvidia-container-cli-info", "shell",
    "log",
)  # fmt: skip

_VERSION = re.compile(r"^\d+(\.\d+)+")
_ARCHES = ("x86_64", "aarch64", "ppc64le", "s390x", "i686", "armv7l", "arm64", "AMD64")
#: words that make a device name an NVIDIA GPU (AMD, Intel and Apple names never carry them)
_NVIDIA_WORDS = re.compile(
    r"nvidia|geforce|tesla|quadro|titan|\brtx\b|\bgtx\b|\bgt \d|\bgrid\b|\bnvs\b|jetson|orin|"
    r"\b[abhlt]\d{1,3}[a-z]?\b|\bgb\d{2,3}\b|\bgh200\b|\bv100\b|\bp100\b|\bk\d{2}\b",
    re.IGNORECASE,
)


@dataclass
class Partial:
    """The facts one dump in the paste states."""

    kind: str
    snapshot: Snapshot
    #: 1-based input line where the dump begins (orders PasteInfo.kinds)
    line: int
    truncated: bool = False
    #: error/warning lines (only the messages recogniser fills this)
    lines: list[PastedLine] = field(default_factory=list)
    container_hint: str | None = None
    docker_runtimes: list[str] | None = None
    #: PasteInfo.gpu_wanted, stated_cuda, stated_cudnn
    gpu_wanted: str | None = None
    stated_cuda: str | None = None
    stated_cudnn: str | None = None
    #: GPU name -> compute capability stated by a log line, attached to the GPU of that name
    gpu_ccs: dict[str, str] = field(default_factory=dict)
    #: the dump lists every GPU of the machine (nvidia-smi, collect_env), unlike a log line
    gpu_inventory: bool = False


def known(value: str | None) -> str | None:
    """The value, or None for the ways dumps say "unknown" (N/A, Could not collect, No CUDA...)."""
    if value is None:
        return None
    v = value.strip().strip("`").strip()
    low = v.lower()
    if not v or low in {"n/a", "na", "(na)", "no cuda", "none", "unknown", "<fill in>", "not set"}:
        return None
    if low.startswith(("could not collect", "not installed", "not found")):
        return None
    return v


def version_at_start(value: str | None) -> str | None:
    """ "12.1.105 (some note)" -> "12.1.105"; None when the value does not start with a version."""
    if not value:
        return None
    m = _VERSION.match(value.strip())
    return m.group(0) if m else None


def is_nvidia_name(name: str | None) -> bool:
    """True when a device name is an NVIDIA GPU's (so AMD/Intel names never become NVIDIA facts)."""
    if not name:
        return False
    low = name.lower()
    if any(
        w in low for w in ("amd", "radeon", "instinct", "intel", "arc ", "apple", "ellesmere", "mi2", "mi3")
    ):
        return False
    return bool(_NVIDIA_WORDS.search(name))


def platform_system(platform: str) -> SystemInfo | None:
    """Python's ``platform.platform()`` string: "Linux-5.15.0-76-generic-x86_64-with-glibc2.31",
    "Windows-10-10.0.19044-SP0", "macOS-14.2-arm64-arm-64bit"."""
    p = platform.strip()
    if m := re.match(
        r"^Linux-(?P<kernel>.+?)-(?P<arch>x86_64|aarch64|ppc64le|s390x|i686|armv7l)(?:-with-(?P<libc>.*))?$",
        p,
    ):
        libc = m.group("libc") or ""
        g = re.search(r"glibc(\d+\.\d+)", libc)
        kernel = m.group("kernel")
        return SystemInfo(
            os="Linux", kernel=kernel, arch=m.group("arch"), glibc=g.group(1) if g else None,
            container=ContainerInfo(wsl=True) if "microsoft" in kernel.lower() else None,
        )  # fmt: skip
    if p.startswith("Windows"):
        return SystemInfo(os="Windows")
    if p.startswith(("macOS", "Darwin")):
        arch = next((a for a in ("arm64", "x86_64") if a in p), None)
        return SystemInfo(os="Darwin", arch=arch)
    return None


def python_env(value: str | None) -> PythonEnv | None:
    v = version_at_start(value)
    return PythonEnv(version=v) if v else None


_BULLET = re.compile(r"^\s*(?:[-*+•]\s+|\d{1,3}\.\s+)?")


def strip_bullet(line: str) -> str:
    """ "  - `Accelerate` version: 0.21.0" -> "`Accelerate` version: 0.21.0"."""
    return _BULLET.sub("", line, count=1)


def is_arch(value: str) -> bool:
    return value in _ARCHES


def torch_local(version: str) -> tuple[str | None, str | None, str | None]:
    """(build, CUDA, ROCm) a torch version's local part names: "2.3.0+cu121" -> ("cuda", "12.1", None),
    "+cpu" -> ("cpu", None, None), "+rocm6.0" -> ("rocm", None, "6.0"); Nones when it names none."""
    local = version.partition("+")[2].lower()
    if cu := re.fullmatch(r"cu(\d+)(\d)", local):
        return "cuda", f"{cu.group(1)}.{cu.group(2)}", None
    if local == "cpu":
        return "cpu", None, None
    if local.startswith("rocm"):
        return "rocm", None, local[4:] or None
    return None, None, None
