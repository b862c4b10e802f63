"""Error and warning lines that state their own cause, read out of any paste.

Each family has one pattern written from the exact wording its program prints (PyTorch's
``torch/cuda/__init__.py`` warnings, CUDA's error strings and enum names, NVML and nvidia-smi,
TensorFlow's ``dso_loader``/``cuda_dnn``, JAX's CUDA plugin checks, Docker and
nvidia-container-cli). Every hit becomes a ``PastedLine`` (the verdict the program printed) and,
where the Snapshot has a field for what it states, a fact: "found version 11040" is the driver's
CUDA version, "sm_120 is not compatible" the GPU's compute capability, NVML's "Driver/library
version mismatch" return code 18, "system not yet initialized" CUDA error 802.

Patterns run over the whole normalised text with ``\\s+`` between words, so a message wrapped by
a terminal or split over lines still matches.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cache

from envcheck.ingest._partial import Partial, is_nvidia_name
from envcheck.ingest._text import Doc
from envcheck.knowledge._version import cuda_text, cudnn_tuple, vstr
from envcheck.models import (
    CudaInfo,
    Framework,
    FrameworksInfo,
    KernelModule,
    NvidiaInfo,
    NvmlStatus,
    PastedLine,
    Snapshot,
)

__all__ = ["FAMILIES", "read"]


_SPACE = r"\s+"
#: the literal words an alternative starts with ("Found no NVIDIA driver", "cudaErrorNoDevice")
_LEAD = re.compile(r"(?:\\b)?([A-Za-z0-9_ -]+)")


#: ASCII-only lower-casing keeps every offset: matches found in the lowered text are read in the original
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
#: what lower-casing a pattern must leave alone: escapes (``\\S``, ``\\D``) and group syntax
_SYNTAX = re.compile(r"\\.|\(\?P<[^>]*>|\(\?P=[^)]*\)|.", re.DOTALL)


def lower_ascii(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class Hit:
    """A match found in the lowered text, read back from the original one."""

    m: re.Match[str]
    text: str

    def start(self) -> int:
        return self.m.start()

    def end(self) -> int:
        return self.m.end()

    def group(self, name: int | str = 0) -> str:
        a, b = self.m.span(name)
        return self.text[a:b] if a >= 0 else ""

    def groupdict(self) -> dict[str, str | None]:
        return {k: self.group(k) if self.m.span(k)[0] >= 0 else None for k in self.m.groupdict()}


@dataclass(frozen=True)
class Pattern:
    """Alternatives whose spaces match any whitespace (wrapped lines), matched case-blind. Each is
    lower-cased and compiled on its own and runs on the lowered text (an alternation, or IGNORECASE,
    scans several times slower), and is skipped when the text lacks the longest word it holds;
    it is compiled the first time a text holds that word (most pastes hold few)."""

    #: (the alternative as written, its longest literal word or None)
    alternatives: tuple[tuple[str, str | None], ...]

    def finditer(self, text: str, lowered: str) -> list[Hit]:
        found = [
            Hit(m, text)
            for source, needle in self.alternatives
            if needle is None or needle in lowered
            for m in _compiled(source).finditer(lowered)
        ]
        return sorted(found, key=Hit.start) if len(self.alternatives) > 1 else found


@cache
def _compiled(alternative: str) -> re.Pattern[str]:
    lowered = "".join(
        t if len(t) > 1 else t.lower() for t in _SYNTAX.findall(alternative.replace(" ", _SPACE))
    )
    return re.compile(lowered)


def _p(*alternatives: str | tuple[str, str]) -> Pattern:
    """Alternatives as written; a (source, needle) pair names the word to test for when the pattern's
    leading words are too common to skip on ("torch", "cuda")."""
    return Pattern(tuple((a, _needle(a)) if isinstance(a, str) else a for a in alternatives))


def _needle(alternative: str) -> str | None:
    """The longest word every match of ``alternative`` holds literally, lower-cased (None: none known)."""
    m = _LEAD.match(alternative)
    if m is None:
        return None
    words = m.group(1).split(" ")
    if alternative[m.end() : m.end() + 1] in ("?", "*", "{"):  # "drivers?": the last letter may be absent
        words[-1] = words[-1][:-1]
    best = max(words, key=len)
    return best.lower() if len(best) >= 4 else None


#: CUDA errors named only by their number ("CUDA Error 802", "cuda runtime error (35)", "code=802(...)",
#: "cudaGetDeviceCount failed with error 100"): one scan for them all, each hit read as the family of its
#: number; the number must follow CUDA's own words, not any "error 35"
_NUMBERED = {"35": "cuda-insufficient-driver", "100": "cuda-no-device", "802": "cuda-system-not-ready",
             "803": "cuda-driver-mismatch", "804": "cuda-compat-unsupported",
             "222": "ptx-unsupported-toolchain"}  # fmt: skip
_CODE = r"(?P<code>35|100|222|802|803|804)\b(?![.\d])"


@dataclass(frozen=True)
class Family:
    kind: str
    pattern: Pattern
    #: what the family means, for ``envcheck rules`` and the README
    meaning: str


FAMILIES = (
    # the CUDA version the driver reports, 1000*major + 10*minor (9020, 12040); a CUDA shim that is not
    # NVIDIA's driver (ZLUDA) reports INT_MAX, 2147483647, which is no version
    Family("torch-driver-too-old", _p(r"NVIDIA driver on your system is too old \(found version "
                                      r"(?P<found>\d{4,5})\)"),
           "PyTorch: the driver's CUDA version is older than the one the wheel was built with"),
    Family("torch-no-driver", _p(r"Found no NVIDIA driver on your system"),
           "PyTorch found no NVIDIA driver (none installed, or no NVIDIA GPU)"),
    Family("torch-arch-incompatible",
           _p(r"with CUDA capability sm_(?P<sm>\d{1,4}) is not compatible with the current PyTorch "
              r"installation"),
           "PyTorch has no code for this GPU's compute capability"),
    Family("torch-gpu-too-old",
           _p(r"Found GPU\s*(?P<idx>\d{1,3}) (?P<name>[^\n]{1,120}?) which is of (?:cuda|compute) capability "
              r"(?:\(CC\) )?(?P<cc>\d+\.\d+)",
              # the same warning printed unformatted ("Found GPU%d %s which is of cuda capability %d.%d.")
              r"PyTorch no longer supports this GPU because it is too old"),
           "PyTorch: this GPU's compute capability is below what the build supports"),
    Family("torch-gpu-needs-newer-cuda",
           # torch 0.3-1.x: "... for optimal performance and fast startup time, but ..."; later "... to work
           # properly, but ..."
           _p(r"Found GPU\s*(?P<idx>\d{1,3}) (?P<name>[^\n]{1,120}?) which requires CUDA_VERSION >= "
              r"(?P<need>\d{4,6}) (?:for optimal performance and fast startup time|to work properly), "
              r"but your PyTorch(?: ?\([^)\n]{0,20}\))? was compiled with CUDA_VERSION (?P<have>\d{4,6})"),
           "PyTorch was built with a CUDA too old for this GPU"),
    Family("torch-not-compiled-cuda", _p(r"Torch not compiled with CUDA enabled"),
           "the installed torch is a CPU-only build"),
    Family("torch-no-gpu",
           _p(r"Torch is not able to use GPU", r"Invalid CUDA '?device=[^'\n]{0,20}'? requested",
              r"No CUDA GPUs are available", r"CUDA is not available\b",
              (r"torch\.cuda\.is_available(?:\(\))?\s*[:=]?\s*(?:returns?\s+|->\s*|is\s+|==\s*|=\s*)?\**\s*"
               r"False\b", "is_available")),
           "torch cannot use a GPU (torch.cuda.is_available() is False): the cause is in other facts"),
    Family("cuda-ext-mismatch",
           _p(r"Installed CUDA version (?P<nvcc>\d+\.\d+) does not match the version torch was compiled with "
              r"(?P<torch>\d+\.\d+)",
              r"The detected CUDA version \((?P<nvcc2>\d+\.\d+)\) mismatches the version that was used to "
              r"compile PyTorch \((?P<torch2>\d+\.\d+)\)"),
           "building a CUDA extension: the nvcc found is another CUDA than torch was built with"),
    Family("no-kernel-image",
           _p(r"no kernel image is available(?: for execution on the device)?",
              r"cudaErrorNoKernelImageForDevice",
              r"CUDA_ERROR_NO_BINARY_FOR_GPU", r"device kernel image is invalid",
              # before CUDA 9.2 a kernel without code for the GPU failed as error 8
              r"cuda runtime error \(8\) : invalid device function", r"cudaErrorInvalidDeviceFunction"),
           "a CUDA kernel has no code for this GPU (CUDA error 209)"),
    Family("cuda-insufficient-driver",
           _p(r"CUDA driver version is insufficient for CUDA runtime version", r"cudaErrorInsufficientDriver",
              r"CUDA_ERROR_INSUFFICIENT_DRIVER"),
           "CUDA error 35: the driver is older than the CUDA runtime, or missing"),
    Family("cuda-no-device",
           _p(r"no CUDA-capable device is detected", r"cudaErrorNoDevice\b", r"CUDA_ERROR_NO_DEVICE"),
           "CUDA error 100 (38 before CUDA 10.1): CUDA sees no GPU"),
    Family("cuda-system-not-ready",
           _p(r"system not yet initialized", r"cudaErrorSystemNotReady", r"CUDA_ERROR_SYSTEM_NOT_READY"),
           "CUDA error 802: an NVSwitch system whose fabric manager is not running"),
    Family("cuda-driver-mismatch",
           _p(r"system has unsupported display driver\s*/\s*cuda driver combination",
              r"cudaErrorSystemDriverMismatch", r"CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"),
           "CUDA error 803: the CUDA driver library (libcuda) and the loaded kernel driver are different "
           "versions"),
    Family("ptx-unsupported-toolchain",
           _p(r"the provided PTX was compiled with an unsupported toolchain",
              r"cudaErrorUnsupportedPtxVersion", r"CUDA_ERROR_UNSUPPORTED_PTX_VERSION"),
           "CUDA error 222: the program's PTX was made by a CUDA toolkit newer than the driver can compile"),
    Family("cuda-compat-unsupported",
           _p(r"forward compatibility was attempted on non supported HW",
              r"cudaErrorCompatNotSupportedOnDevice", r"CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"),
           "CUDA error 804: forward-compatibility libraries on a GPU or driver that does not take them"),
    Family("cuda-unknown-error",
           _p(r"CUDA unknown error\s*-\s*this may be due to an incorrectly set up environment",
              r"cudaErrorUnknown", r"CUDA_ERROR_UNKNOWN", r"cuda(?<!\wcuda) 999\b", r"Cuda failure 999",
              r"cuInit\(?\)?[^\n]{0,40}\b999\b"),
           "CUDA error 999: CUDA could not start (suspend/resume, nvidia_uvm, a foreign libcuda)"),
    Family("nvml-mismatch",
           _p(r"Driver/library version mismatch"
              r"(?:[\s\S]{0,40}?NVML library version: (?P<lib>\d+(?:\.\d+)*))?",
              r"LIB_RM_VERSION_MISMATCH",
              # TensorFlow/XLA's cuda_diagnostics compare the module's version with libcuda's
              (r"kernel version (?P<module>\d+(?:\.\d+)+) does not match DSO version (?P<dso>\d+(?:\.\d+)+)",
               "dso")),
           "NVML 18: the loaded kernel module and the driver libraries are different versions"),
    Family("nvml-unknown", _p(r"Failed to initialize NVML: Unknown Error"), "NVML 999: unknown error"),
    Family("cuda-error-number",
           _p((rf"cuda(?: runtime| driver)? error\s*[:(]?\s*{_CODE}", "error"),
              (rf"cuda\w* failed with (?:code|error) {_CODE}", "failed with"),
              (rf"code={_CODE}\(cuda", "code=")),
           "a CUDA error named only by its number (35, 100, 222, 802, 803, 804): read as that error's "
           "family"),
    Family("gpu-fell-off-bus",
           _p(r"fallen off the bus", (r"xid\b[^\n]{0,40}?\b79\b", "xid"), r"ERROR_GPU_IS_LOST",
              r"GPU is lost\b"),
           "Xid 79: the GPU fell off the PCIe bus (hardware, power or heat) and is lost until reset"),
    Family("smi-no-driver",
           _p(r"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver",
              r"NVML_ERROR_DRIVER_NOT_LOADED", (r"nvml error: driver not loaded", "nvml error")),
           "NVML 9: no NVIDIA kernel module is loaded"),
    Family("container-cli-no-nvml",
           _p(r"nvidia-container-cli: initialization error: load library failed: "
              r"(?P<lib>libnvidia-ml\.so\.1|libcuda\.so\.1)"),
           "Docker's NVIDIA hook found no driver library (libnvidia-ml, libcuda) on the host"),
    Family("smi-no-nvml",
           _p(r"couldn't find libnvidia-ml\.so library", r"NVML Shared Library Not Found",
              r"libnvidia-ml(?<!failed:.libnvidia-ml)\.so(?:\.1)?: cannot open shared object file"),
           "NVML 12: the driver library libnvidia-ml is missing"),
    Family("docker-no-gpu-runtime",
           _p(r'could not select device driver (?:"(?P<driver>[^"\n]*)" )?with capabilities: \[\[gpu\]\]',
              r"unknown or invalid runtime name: nvidia", r"Unknown runtime specified nvidia"),
           "Docker has no NVIDIA runtime for --gpus"),
    Family("container-cuda-requirement",
           _p(r"unsatisfied condition: cuda\s*>=?\s*(?P<need>\d+\.\d+)"),
           "nvidia-container-cli: the image needs a newer CUDA than the host driver reports"),
    Family("container-wsl-no-adapters", _p(r"WSL environment detected but no adapters were found"),
           "nvidia-container-cli under WSL finds no GPU adapter (WSL1, no NVIDIA GPU, an old driver)"),
    Family("cudnn-no-libcuda",
           _p(r"Could not load library (?P<lib>libcudnn\w*\.so(?:\.\d+)*)\. Error: libcuda\.so: cannot open "
              r"shared object file"),
           "cuDNN cannot dlopen the driver's libcuda.so (WSL: /usr/lib/wsl/lib is off the loader path)"),
    Family("tf-dlopen",
           _p(r"Could not (?:load dynamic library|dlopen library) '(?P<lib>lib[^'\n]+)'"),
           "TensorFlow could not load a CUDA library"),
    Family("tf-no-cudart",
           # tsl/cuda/cudart_stub.cc (TF >= 2.13): printed when the CUDA runtime (libcudart), not the driver,
           # cannot be loaded, despite its words
           _p((r"Could not find cuda drivers on your machine, GPU will not be used", "cuda drivers")),
           "TensorFlow (2.13+) cannot load the CUDA runtime (libcudart) its CUDA build needs: runs on CPU"),
    Family("tf-skip-gpu", _p(r"Cannot dlopen some GPU libraries"),
           "TensorFlow skips the GPU because CUDA libraries are missing"),
    Family("cudnn-runtime-mismatch",
           _p(r"Loaded runtime CuDNN library: (?P<loaded>\d+(?:\.\d+)*)(?: \(compatibility version \d+\))? "
              r"but source was compiled with:? (?P<built>\d+(?:\.\d+)*)"),
           "TensorFlow/XLA: the cuDNN loaded is older than (or another major than) the build's"),
    Family("jax-found-older",
           _p(r"Found (?P<lib>cuDNN|CUDA|cuBLAS|cuSPARSE|cuFFT|cuPTI|cuSOLVER|NCCL) version (?P<found>\d+), "
              r"but JAX was built against version (?P<built>\d+)"),
           "JAX: a CUDA library is older than the one it was built against"),
    Family("jax-outdated",
           _p(r"Outdated (?P<lib>cuDNN|CUDA|cuBLAS|cuSPARSE|cuFFT|cuPTI|cuSOLVER|NCCL) installation found\.?"
              r"[\s\S]{0,60}?Version JAX was built against: (?P<built>\d+)[\s\S]{0,60}?Minimum supported: "
              r"(?P<min>\d+)[\s\S]{0,60}?Installed version: (?P<found>\d+)"),
           "JAX: a CUDA library is below the minimum its CUDA plugin accepts"),
    Family("jax-lib-missing", _p(r"Unable to load (?P<lib>cuDNN|CUDA|cuBLAS|cuSPARSE|cuFFT|cuPTI)\.(?: Is it "
                                 r"installed\?)?(?![\w.])"),
           "JAX could not load a CUDA library"),
    Family("jax-plugin-mismatch",
           _p(r"Mismatched PJRT plugin PJRT API version \((?P<plugin>[\d.]+)\) and framework PJRT API "
              r"version (?P<framework>[\d.]+)",
              r"jaxlib version (?P<jaxlib>\S+) is newer than and incompatible with jax version (?P<jax>\S+)",
              r"jaxlib is version (?P<jaxlib2>[\w.+]+), but this version of jax requires version >= "
              r"(?P<need>[\w.]+)",
              r"module 'jaxlib(?:\.\w+)*' has no attribute '(?P<attr>\w+)'"),
           "JAX: the CUDA plugin, jaxlib and jax versions do not match"),
    Family("jax-backend-failed",
           _p(r"Unable to initialize backend '(?P<backend>cuda|gpu|rocm|tpu)'",
              r"Backend '(?P<backend2>cuda|gpu)' failed to initialize",
              r"(?P<backend3>CUDA) backend failed to initialize"),
           "JAX fell back to CPU"),
    Family("hip-no-device",
           _p((r"No HIP GPUs are available", "hip gpus"), r"hipErrorNoDevice"),
           "a ROCm (AMD) build of the framework finds no AMD GPU: not an NVIDIA problem"),
    Family("hip-no-binary",
           _p(r"hipErrorNoBinaryForGpu", (r"HIP error: invalid device function", "hip error")),
           "a ROCm (AMD) build has no code for this AMD GPU's architecture (gfx...)"),
    Family("jax-cpu-jaxlib", _p(r"An NVIDIA GPU may be present on this machine, but a CUDA-enabled jaxlib is "
                                r"not installed"),
           "JAX: the jaxlib installed is a CPU build"),
)  # fmt: skip


def _clean_name(raw: str) -> str:
    """A GPU name quoted inside a warning: strip "UserWarning:", bullets, backticks, quotes."""
    name = raw.rsplit("UserWarning:", maxsplit=1)[-1]
    return name.strip().strip("-*>`'\" \t")


def _values(kind: str, m: Hit, text: str) -> dict[str, str]:
    v = {k: val for k, val in m.groupdict().items() if val is not None}
    if kind == "torch-arch-incompatible":
        sm = v.pop("sm")
        v["cc"] = f"{sm[:-1]}.{sm[-1]}"
        # the GPU is named just before the match, on its line or (terminal-wrapped) the one above
        before = text[max(0, m.start() - 200) : m.start()].rstrip().rstrip("`")
        if name := _clean_name(re.split(r"[\n:`]", before)[-1]):
            v["name"] = name
        tail = text[m.end() : m.end() + 600]
        if archs := re.search(r"supports CUDA capabilities ((?:(?:sm|compute)_\d+\w?\s*)+)", tail):
            v["supports"] = " ".join(archs.group(1).split())
    elif kind in ("torch-gpu-too-old", "torch-gpu-needs-newer-cuda") and v.get("name"):
        v["name"] = _clean_name(v["name"])
        tail = text[m.end() : m.end() + 400]
        if lo := re.search(
            r"minimum cuda capability (?:that we support|supported by this library) is (\d+\.\d+)", tail, re.I
        ):
            v["min_cc"] = lo.group(1)
        if rng := re.search(
            r"supported by this version of PyTorch is\s*\((\d+\.\d+)\)\s*-\s*\((\d+\.\d+)\)", tail, re.I
        ):
            v["min_cc"], v["max_cc"] = rng.group(1), rng.group(2)
    elif kind in ("cuda-no-device", "smi-no-driver"):
        line_start = text.rfind("\n", 0, m.start()) + 1
        if "nvidia-container-cli" in text[line_start : m.start()]:
            v["source"] = "nvidia-container-cli"
    elif kind == "cudnn-runtime-mismatch":
        line_start = text.rfind("\n", 0, m.start()) + 1
        where = text[line_start : m.start()]
        v["source"] = (
            "tensorflow"
            if ("tensorflow/" in where or "local_xla" in where)
            else ("xla" if "xla" in where else "unknown")
        )
    elif kind in ("jax-backend-failed",):
        v = {"backend": (v.get("backend") or v.get("backend2") or v.get("backend3") or "").lower()}
    elif kind == "tf-dlopen" and v.get("lib", "").startswith("libnvinfer"):
        v["optional"] = "TensorRT"
    elif kind == "cuda-ext-mismatch":
        v = {"nvcc": v.get("nvcc") or v.get("nvcc2", ""), "torch": v.get("torch") or v.get("torch2", "")}
    elif kind == "jax-plugin-mismatch" and "jaxlib2" in v:
        v["jaxlib"] = v.pop("jaxlib2")
    elif kind == "jax-cpu-jaxlib" and (plugin := _CUDA_PLUGIN.search(text)):
        v["cuda_plugin"] = plugin.group(0)
    return v


#: signs the CUDA plugin is installed: its module in a traceback, its wheel, or a message only its version
#: checks print ("Unable to load cuSPARSE", "Outdated cuDNN installation found", "Found CUDA version ...")
_CUDA_PLUGIN = re.compile(
    r"jax_plugins[./]xla_cuda\d+|jax_cuda\d+_plugin|jax-cuda\d+-plugin|Unable to load (?:cuDNN|CUDA|cuBLAS|"
    r"cuSPARSE|cuFFT|cuPTI|cuSOLVER)\b|Outdated \w+ installation found|but JAX was built against version"
)


def _shown(doc: Doc, idx: int, m: Hit) -> str:
    """The pasted line that holds the match (all of it when it is short), else the match itself."""
    matched = " ".join(m.group(0).split())
    line = " ".join(doc.lines[idx].text.split()) if doc.lines else matched
    if matched in line and len(line) <= 300:
        return line
    return matched[:300]


#: JAX tries every backend it knows; these are not CUDA's, and one failing says nothing of the CUDA plugin
_OTHER_BACKEND = re.compile(r"unable to initialize backend '(?:rocm|tpu|tpu_driver|metal)'[^\n]*$")


def _absent_backend_probe(start: int, lowered: str) -> bool:
    """The match ends a line like "Unable to initialize backend 'rocm': module 'jaxlib.xla_extension' has no
    attribute 'GpuAllocatorConfig'": JAX probing a backend this machine does not have (a jaxlib without the
    TPU or ROCm client), which it prints on healthy CUDA machines too, not a jax/plugin version mismatch."""
    line_start = lowered.rfind("\n", 0, start) + 1
    return _OTHER_BACKEND.search(lowered[line_start:start]) is not None


def read(doc: Doc) -> list[Partial]:
    """One Partial holding every error line found and the facts they state (none when there are none)."""
    text = doc.text
    lines: list[PastedLine] = []
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    lowered = lower_ascii(text)
    for fam in FAMILIES:
        for m in fam.pattern.finditer(text, lowered):
            if fam.kind == "cuda-error-number":
                # ROCm builds print HIP errors in CUDA's words: "cuda runtime error (100) : hipErrorNoDevice"
                eol = lowered.find("\n", m.end())
                if "hiperror" in lowered[m.end() : eol if eol >= 0 else len(lowered)]:
                    continue
                kind = _NUMBERED[m.group("code")]
            else:
                kind = fam.kind
            if kind == "jax-plugin-mismatch" and _absent_backend_probe(m.start(), lowered):
                continue
            values = _values(kind, m, text)
            values.pop("code", None)
            key = (kind, tuple(sorted(values.items())))
            if key in seen:
                continue
            seen.add(key)
            idx = doc.index_at(m.start())
            lines.append(PastedLine(kind=kind, text=_shown(doc, idx, m), values=values,
                                    line=doc.lines[idx].no if doc.lines else None))  # fmt: skip
    if not lines:
        return []
    if any(ln.kind == "torch-gpu-too-old" and ln.values.get("name") for ln in lines):
        # the formatted warning's second line matched the bare alternative too
        lines = [ln for ln in lines if ln.kind != "torch-gpu-too-old" or ln.values.get("name")]
    lines.sort(key=lambda x: x.line or 0)
    facts = _facts(lines, text)
    return [Partial("log", facts.snapshot, lines[0].line or 1, lines=lines, gpu_ccs=facts.gpu_ccs,
                    container_hint=facts.container_hint)]  # fmt: skip


# --------------------------------------------------------------------------- facts the lines state


@dataclass
class _Facts:
    snapshot: Snapshot
    gpu_ccs: dict[str, str]
    container_hint: str | None


_NVML = {
    "nvml-mismatch": (18, "LIB_RM_VERSION_MISMATCH", "Driver/library version mismatch"),
    "smi-no-driver": (9, "DRIVER_NOT_LOADED", "couldn't communicate with the NVIDIA driver"),
    "nvml-unknown": (999, "UNKNOWN", "Unknown Error"),
    "smi-no-nvml": (12, "LIBRARY_NOT_FOUND", "libnvidia-ml.so not found"),
}
#: lines printed on the host by Docker or its NVIDIA hook: the paste is about a container
_CONTAINER_LINES = (
    "container-cli-no-nvml", "docker-no-gpu-runtime", "container-cuda-requirement",
    "container-wsl-no-adapters",
)  # fmt: skip
_DEVICE_COUNT = {"cuda-system-not-ready": 802, "cuda-insufficient-driver": 35, "cuda-no-device": 100}


def _framework(fws: dict[str, Framework], name: str, **update: object) -> None:
    fw = fws.get(name) or Framework(name=name, installed=True)
    fws[name] = fw.model_copy(update={k: v for k, v in update.items() if getattr(fw, k) is None})


def _facts(lines: list[PastedLine], text: str) -> _Facts:
    fws: dict[str, Framework] = {}
    gpu_ccs: dict[str, str] = {}
    nvidia = NvidiaInfo()
    cuda = CudaInfo()
    hint = None
    jax_context = bool(re.search(r"\bjax(?:lib)?\b", text, re.IGNORECASE))
    for ln in lines:
        v = ln.values
        kind = ln.kind
        if kind == "torch-driver-too-old":
            nvidia.cuda_driver_version = nvidia.cuda_driver_version or int(v["found"])
            _framework(fws, "torch", build="cuda")
        elif kind == "torch-gpu-too-old" and not v.get("name"):
            _framework(fws, "torch", build="cuda")  # the unformatted warning names no GPU
        elif kind in ("torch-arch-incompatible", "torch-gpu-too-old", "torch-gpu-needs-newer-cuda"):
            if is_nvidia_name(v.get("name")) and v.get("cc"):
                gpu_ccs.setdefault(v["name"], v["cc"])
            if is_nvidia_name(v.get("name")):
                archs = v["supports"].split() if v.get("supports") else None
                compiled = cuda_text(int(v["have"])) if v.get("have") else None  # "CUDA_VERSION 8000"
                _framework(fws, "torch", build="cuda", arch_list=archs, cuda_build=compiled)
        elif kind == "torch-not-compiled-cuda":
            _framework(fws, "torch", build="cpu")
        elif kind in _NVML and nvidia.nvml is None:
            code, name, message = _NVML[kind]
            nvidia.nvml = NvmlStatus(ok=False, code=code, name=name, message=message)
            if v.get("module"):  # "kernel version 515.48.7 does not match DSO version 510.73.5"
                nvidia.kernel_module = KernelModule(loaded=True, version=v["module"])
        elif (
            kind in _DEVICE_COUNT
            and cuda.device_count_code is None
            and v.get("source") != "nvidia-container-cli"
        ):
            cuda.device_count_code = _DEVICE_COUNT[kind]
        elif kind == "cuda-unknown-error":
            cuda.cu_init_code = 999
        elif kind == "jax-cpu-jaxlib" and not v.get("cuda_plugin"):
            # with the CUDA plugin installed this fallback line only follows its failure to initialize
            _framework(fws, "jax", build="cpu")
        elif kind == "cudnn-runtime-mismatch":
            owner = "tensorflow" if v.get("source") == "tensorflow" or not jax_context else "jax"
            _framework(fws, owner, build="cuda", cudnn_build=v["built"])
        elif kind in ("jax-found-older", "jax-outdated") and v.get("lib") == "cuDNN":
            built = cudnn_tuple(v["built"])
            _framework(fws, "jax", build="cuda", cudnn_build=vstr(built) if built else None)
        elif kind == "tf-dlopen" and not v.get("optional"):
            lib = v["lib"]
            if m := re.match(r"libcudnn\.so\.(\d+)", lib):
                _framework(fws, "tensorflow", build="cuda", cudnn_build=m.group(1))
            elif m := re.match(r"libcudart\.so\.(\d+)\.(\d+)", lib):
                pre11 = int(m.group(1)) < 11  # the soname was the exact release before CUDA 11
                _framework(
                    fws,
                    "tensorflow",
                    build="cuda",
                    cuda_build=f"{m.group(1)}.{m.group(2)}" if pre11 else None,
                )
            else:
                _framework(fws, "tensorflow", build="cuda")
        elif kind in ("hip-no-device", "hip-no-binary"):
            _framework(fws, "torch", build="rocm")
        elif kind == "tf-no-cudart":
            _framework(fws, "tensorflow", build="cuda")
        elif kind == "cuda-ext-mismatch" and v.get("nvcc") and v.get("torch"):
            cuda.nvcc_version = cuda.nvcc_version or v["nvcc"]
            _framework(fws, "torch", build="cuda", cuda_build=v["torch"])
        if kind in _CONTAINER_LINES or v.get("source") == "nvidia-container-cli":
            hint = hint or ln.text
    has_nvidia = nvidia.nvml is not None or nvidia.cuda_driver_version is not None
    has_cuda = cuda.device_count_code is not None or cuda.cu_init_code is not None or bool(cuda.nvcc_version)
    snapshot = Snapshot(
        nvidia=nvidia if has_nvidia else None,
        cuda=cuda if has_cuda else None,
        frameworks=FrameworksInfo(frameworks=list(fws.values())) if fws else None,
    )
    return _Facts(snapshot, gpu_ccs, hint)


#: for tests and docs: the meaning of each family
MEANING: dict[str, str] = {f.kind: f.meaning for f in FAMILIES}
