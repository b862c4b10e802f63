"""Read PyTorch's ``python -m torch.utils.collect_env`` (2017 to 2026) and vLLM's ``collect_env.py``.

collect_env is what people paste into bug reports; its format has grown since 2017 (ROCm,
Clang, Libc, CPU, XPU and allocator lines were added, ``Yes``/``No`` became ``True``/``False``)
and it differs on Windows (CPU from WMI) and macOS (device name from torch, a kext version in
place of a driver). vLLM's copy prints the same keys under ``=====`` banners, aligned on the colon
(``PyTorch version              : 2.7.0+cu126``), plus vLLM's own section. Only what the text
states becomes a fact; "Could not collect", "N/A" and "No CUDA" stay None so that rules skip
instead of guessing. Two traps are handled on purpose: "CUDA runtime version" is nvcc's version
(not the runtime torch uses), and "cuDNN version" lists the system's libcudnn files (not the
cuDNN torch was built with or loads). Any number of reports in any wrapping is read; a cut-off
one yields what it holds.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field

from envcheck.ingest import packages as pk
from envcheck.ingest._partial import Partial, known
from envcheck.ingest._text import Doc
from envcheck.ingest.lscpu import cpu_from_lines
from envcheck.models import (
    ContainerInfo,
    CudaInfo,
    CudaLibrary,
    Framework,
    FrameworkDevices,
    FrameworksInfo,
    Gpu,
    MigDevice,
    NvidiaInfo,
    PythonEnv,
    Snapshot,
    SystemInfo,
)

__all__ = ["KEYS", "cudnn_candidates", "parse", "read"]

#: Every "Key: value" line collect_env has printed since 2017, in template order, and vLLM's own.
KEYS = (
    "PyTorch version",
    "Is debug build",
    "CUDA used to build PyTorch",
    "ROCM used to build PyTorch",
    "OS",
    "GCC version",
    "Clang version",
    "CMake version",
    "Libc version",
    "Python version",
    "Python platform",
    "Is CUDA available",
    "CUDA runtime version",
    "CUDA_MODULE_LOADING set to",
    "GPU models and configuration",
    "Nvidia driver version",
    "cuDNN version",
    "Is XPU available",
    "XPU used to build PyTorch",
    "Intel GPU driver version",
    "Intel GPU models onboard",
    "Intel GPU models detected",
    "HIP runtime version",
    "MIOpen runtime version",
    "Is XNNPACK available",
    "Caching allocator config",
    "CPU",
    "Versions of relevant libraries",
    "ROCM Version",
    "Neuron SDK Version",
    "vLLM Version",
    "vLLM Build Flags",
    "GPU Topology",
)
#: spellings seen in the wild, to the key collect_env prints
_ALIASES = {"version of relevant libraries": "Versions of relevant libraries"}
_CANONICAL = {k.lower(): k for k in KEYS} | _ALIASES
#: a key, then its colon; a version-looking value may follow a key that lost its colon
#: ("PyTorch version 1.5.0")
_KEY_LINE = re.compile(
    r"^\s*(" + "|".join(re.escape(k) for k in sorted(_CANONICAL, key=len, reverse=True)) + r")"
    r"(?:\s*:|(?=\s+\d))[ \t]*(.*?)\s*$",
    re.IGNORECASE,
)
_BANNER = re.compile(r"^\s*={10,}\s*$")
_COLLECTING = re.compile(r"^\s*Collecting environment information")
#: keys whose value may continue on the following lines
_MULTILINE = {
    "GPU models and configuration",
    "cuDNN version",
    "Intel GPU driver version",
    "Intel GPU models onboard",
    "Intel GPU models detected",
}
#: keys that only collect_env prints (a "Python version: 3.10" or "cuDNN version: 8" alone, as in other
#: templates, is not a collect_env report)
_DISTINCTIVE = {
    "PyTorch version",
    "CUDA used to build PyTorch",
    "Is CUDA available",
    "GPU models and configuration",
    "Nvidia driver version",
    "Is debug build",
    "ROCM used to build PyTorch",
    "Versions of relevant libraries",
    "vLLM Version",
    "CUDA_MODULE_LOADING set to",
    "Is XNNPACK available",
    "GPU Topology",
    "vLLM Build Flags",
}

_VERSION = re.compile(r"^\d+(\.\d+)+$")
#: reports read from one paste at most (the ingest package keeps as many Partials of a kind)
_MAX_REPORTS = 64
_ARCHES = {"x86_64", "amd64", "aarch64", "arm64", "ppc64le", "s390x", "i686", "i386", "armv7l"}


@dataclass
class _Parsed:
    fields: dict[str, str] = field(default_factory=dict)
    more: dict[str, list[str]] = field(default_factory=dict)
    cpu: list[str] = field(default_factory=list)
    libraries: list[str] = field(default_factory=list)
    topology: list[str] = field(default_factory=list)
    first: int = 0
    last: int = 0  # the last input line the report took
    vllm: bool = False
    ended: bool = False  # reached the libraries section (the report was not cut before it)
    #: keys written in another case than collect_env's ("pytorch version:" is ComfyUI's start-up line)
    respelled: set[str] = field(default_factory=set)


def read(doc: Doc) -> list[Partial]:
    """One Partial per collect_env report in ``doc`` (fragments too: one distinctive line is enough)."""
    out = []
    reports = _split(doc)
    if len(reports) > _MAX_REPORTS:  # a paste of the same lines thousands of times: its ends are enough
        reports = reports[: _MAX_REPORTS // 2] + reports[-_MAX_REPORTS // 2 :]
    ends = _ends(doc, reports)
    for p in reports:
        distinctive = set(p.fields) & _DISTINCTIVE
        if not distinctive or (
            len(p.fields) < 2 and not p.libraries and ("PyTorch version" not in distinctive or p.respelled)
        ):
            continue  # a lone line is a fragment of collect_env only in collect_env's own spelling
        kind = "vllm-collect-env" if p.vllm else "collect_env"
        # cut short: no libraries section and nothing after the report (a report followed by prose or the
        # end of a fence was pasted whole, whatever it lacks: docTR's copy never prints that section)
        truncated = not p.ended and "PyTorch version" in p.fields and p.last >= ends.get(p.first, 0)
        out.append(Partial(kind, _snapshot(p), p.first, truncated=truncated, gpu_inventory=True))
    return out


def _ends(doc: Doc, reports: list[_Parsed]) -> dict[int, int]:
    """For each report (by its first line), the last line it would have to reach to be the end of what was
    pasted: the last line before the next report (or the paste's end) that is not a prompt, collect_env's
    "Collecting environment information..." or blank."""
    filler = {doc.lines[i].no for i, _ in doc.commands}
    meaningful = [
        ln.no
        for ln in doc.lines
        if ln.text.strip()
        and ln.no not in filler
        and not _COLLECTING.match(ln.text)
        and not _cut_key(ln.text.strip())
    ]
    starts = sorted(r.first for r in reports)
    out = {}
    for i, first in enumerate(starts):
        nxt = starts[i + 1] if i + 1 < len(starts) else None
        # the last meaningful line before the next report (bisect: meaningful is in line order)
        k = bisect_left(meaningful, nxt) if nxt is not None else len(meaningful)
        out[first] = meaningful[k - 1] if k and meaningful[k - 1] > first else first
    return out


def _cut_key(text: str) -> bool:
    """ "CUDA used to build": a key line the paste's end cut before its colon."""
    return len(text) <= _LONGEST_KEY and text.lower() in _KEY_PREFIXES


#: every beginning (4 characters or more) of a key, for the test above, asked of every line
_KEY_PREFIXES = frozenset(key[:n] for key in _CANONICAL for n in range(4, len(key) + 1))
_LONGEST_KEY = max(map(len, _CANONICAL))


def parse(text: str, origin: str) -> Snapshot:
    """The Snapshot a pasted text states (collect_env and whatever else it holds); UsageError when
    nothing in it is recognised. ``envcheck.ingest.load`` is the general entry point."""
    from envcheck.errors import UsageError
    from envcheck.ingest import read_paste
    from envcheck.ingest._text import normalise

    snapshot = read_paste(normalise(text))
    if snapshot is None:
        raise UsageError(f"{origin}: no collect_env report or other dump recognised")
    return snapshot


def _snapshot(p: _Parsed) -> Snapshot:
    system = _system(p.fields)
    is_mac = system is not None and system.os == "Darwin"
    packages = pk.bracket_packages(p.libraries)
    nvidia = _nvidia(p, is_mac)
    return Snapshot(
        source="collect_env",
        system=system,
        cpu=cpu_from_lines(p.cpu),
        nvidia=nvidia,
        cuda=_cuda(p),
        frameworks=_frameworks(p, packages),
    )


# --------------------------------------------------------------------------- splitting


def _split(doc: Doc) -> list[_Parsed]:
    reports: list[_Parsed] = []
    p = _Parsed()
    state: str | None = None  # None, a multi-line key, "cpu", "libs" or "topology"
    for ln in doc.lines:
        line = ln.text.rstrip()
        m = _match(line)
        if m is None and line.strip() == "Versions of relevant libraries":  # vLLM: a banner title
            m = _match("Versions of relevant libraries:")
        if _BANNER.match(line):
            p.vllm = p.vllm or bool(p.fields)  # vLLM prints its sections under ===== banners
            if state in ("libs", "cpu", "topology"):
                state = None
            continue
        if (
            state == "libs"
            and not (m and m.group(1) == "PyTorch version")
            and (m is None or m.group(1) not in ("vLLM Version", "ROCM Version", "Neuron SDK Version"))
        ):
            p.libraries.append(line)
            p.last = ln.no
            continue
        if state == "cpu" and not (m and m.group(1) in ("Versions of relevant libraries", "PyTorch version")):
            p.cpu.append(line)
            p.last = ln.no
            continue
        if state == "topology" and not m:
            if line.strip():
                p.topology.append(line)
            continue
        if m:
            key, value = m.group(1), m.group(2)
            if key in p.fields:  # a second report pasted after the first
                reports.append(p)
                p = _Parsed()
            if not p.fields:
                p.first = ln.no
            p.fields[key] = value
            p.last = ln.no
            if isinstance(m, _Key) and m.spelled != key:
                p.respelled.add(key)
            p.vllm = p.vllm or key.startswith(("vLLM", "GPU Topology", "Neuron", "ROCM Version"))
            p.ended = p.ended or key == "Versions of relevant libraries"
            state = {"CPU": "cpu", "Versions of relevant libraries": "libs", "GPU Topology": "topology"}.get(
                key
            )
            if key in _MULTILINE:
                state = key
                p.more[key] = []
            continue
        if state in _MULTILINE:
            if line.strip():
                p.more[state].append(line)
                p.last = ln.no
            elif p.more[state] or _has_value(p, state):
                state = None
    if p.fields:
        reports.append(p)
    for r in reports:
        while r.cpu and not r.cpu[-1].strip():
            r.cpu.pop()
    return reports


class _Key:
    """A matched "Key: value" line with the key in collect_env's own spelling."""

    def __init__(self, key: str, value: str, spelled: str = "") -> None:
        self.key, self.value, self.spelled = key, value, spelled

    def group(self, n: int) -> str:
        return self.key if n == 1 else self.value


def _match(line: str) -> _Key | None:
    m = _KEY_LINE.match(line)
    if m is None:
        return None
    return _Key(_CANONICAL[m.group(1).lower()], m.group(2), m.group(1))


def distinctive(line: str) -> bool:
    """True when ``line`` is a "Key: value" line only collect_env prints (not a lone "PyTorch version")."""
    m = _match(line)
    return m is not None and m.key in _DISTINCTIVE and m.key != "PyTorch version"


def claims(line: str) -> bool:
    """True when ``line`` is one of collect_env's "Key: value" lines."""
    return _KEY_LINE.match(line) is not None


def _has_value(p: _Parsed, key: str) -> bool:
    """A blank line ends a multi-line value, unless the value has not started yet."""
    return bool(p.fields.get(key, "").strip())


def _known(value: str | None) -> str | None:
    return known(value)


def _bool(value: str | None) -> bool | None:
    v = (value or "").strip().split("\n")[0].lower()
    return {"yes": True, "true": True, "no": False, "false": False}.get(v)


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# --------------------------------------------------------------------------- frameworks


def _frameworks(p: _Parsed, packages: list[pk.Package]) -> FrameworksInfo | None:
    torch = _torch(p, packages)
    listed = pk.frameworks_from(packages)
    wheels = listed.nvidia_wheels if listed else None
    others = [f for f in (listed.frameworks if listed else []) if f.name != "torch"]
    if torch is None and not wheels and not others:
        return None
    return FrameworksInfo(frameworks=([torch] if torch else []) + others, nvidia_wheels=wheels)


def _torch(p: _Parsed, packages: list[pk.Package]) -> Framework | None:
    f = p.fields
    version = _known(f.get("PyTorch version"))
    if version and version[:1].isdigit():
        version = version.split()[0]  # "1.8.0 (torchvision: 0.9.0)" in other tools' copies of the template
    listed = pk.frameworks_from([x for x in packages if x.name in ("torch", "pytorch", *pk.TORCH_COMPANIONS)])
    pkg_torch = next((x for x in (listed.frameworks if listed else []) if x.name == "torch"), None)
    plugins = pkg_torch.plugins if pkg_torch else {}
    if version is None:
        if pkg_torch is not None:  # installed, but collect_env could not import it
            return pkg_torch.model_copy(
                update={
                    "build": None,
                    "cuda_build": None,
                    "cudnn_build": None,
                    "error": "collect_env could not import torch",
                }
            )
        if f.get("PyTorch version", "").strip() == "N/A" and pk.pip_collected(p.libraries):
            return Framework(name="torch", installed=False)
        return None

    local = version.partition("+")[2].lower()
    cuda_raw = (f.get("CUDA used to build PyTorch") or "").strip()
    rocm = _known(f.get("ROCM used to build PyTorch"))
    build: str | None = None
    cuda_build: str | None = None
    if rocm or local.startswith("rocm"):
        build = "rocm"
    elif _VERSION.match(cuda_raw):
        build, cuda_build = "cuda", _major_minor(cuda_raw)
    elif (cu := re.fullmatch(r"cu(\d+)(\d)", local)) is not None:
        build, cuda_build = "cuda", f"{cu.group(1)}.{cu.group(2)}"
    elif local == "xpu" or _bool(f.get("Is XPU available")):
        build = "xpu"
    elif local == "cpu" or cuda_raw == "None" or cuda_raw.lower().startswith("could not collect"):
        # torch imported and torch.version.cuda is None: a build without CUDA
        build = "cpu"

    cudnn_build = None
    conda = next(
        (x for x in packages if x.manager == "conda" and x.name == "pytorch" and x.version == version), None
    )
    if conda and conda.build and (cm := re.search(r"cudnn(\d+(?:\.\d+)*)", conda.build)):
        cudnn_build = cm.group(1)
    gpu_models = [f.get("GPU models and configuration", ""), *p.more.get("GPU models and configuration", [])]
    devices = [
        line.strip() for line in gpu_models if _known(line) and not re.match(r"^\s*(GPU \d+:|MIG )", line)
    ]
    available = _bool(f.get("Is CUDA available"))
    deep = None
    if available is not None or devices:
        deep = FrameworkDevices(ok=True, gpu_available=available, devices=devices)
    return Framework(
        name="torch",
        installed=True,
        distribution="torch",
        version=version,
        build=build,
        cuda_build=cuda_build,
        cudnn_build=cudnn_build,
        rocm_build=rocm,
        plugins=plugins,
        deep=deep,
    )


# --------------------------------------------------------------------------- nvidia / cuda


def _nvidia(p: _Parsed, is_mac: bool) -> NvidiaInfo | None:
    gpus: list[Gpu] = []
    key = "GPU models and configuration"
    for line in [p.fields.get(key, ""), *p.more.get(key, [])]:
        g = re.match(r"^\s*GPU (\d+): (.+?)(?: \(UUID: (GPU-[0-9A-Fa-f-]+)\))?\s*$", line)
        if g:
            gpus.append(Gpu(index=int(g.group(1)), name=g.group(2), uuid=g.group(3)))
            continue
        mig = re.match(r"^\s+MIG (?:(\d+)g\.\S+ )?Device\s+(\d+):?(?: \(UUID: (MIG-\S+?)\))?\s*$", line)
        if mig and gpus:
            gpu = gpus[-1]
            gpu.mig_mode_current = True
            gpu.mig_devices = [
                *(gpu.mig_devices or []),
                MigDevice(
                    index=int(mig.group(2)),
                    uuid=mig.group(3),
                    slices=int(mig.group(1)) if mig.group(1) else None,
                ),
            ]
    driver = _known(p.fields.get("Nvidia driver version"))
    # on macOS the value is the CUDA kext's version, not an NVIDIA driver version
    if driver is not None and (is_mac or not _VERSION.match(driver)):
        driver = None
    topology = _topology(p.topology)
    if not gpus and driver is None and topology is None:
        return None
    return NvidiaInfo(driver_version=driver, gpus=gpus or None, topology=topology)


def _topology(lines: list[str]) -> list[list[str]] | None:
    """vLLM's ``nvidia-smi topo -m`` matrix: the GPU rows' links to the GPU columns."""
    rows = [
        t
        for ln in lines
        if re.match(r"^\s*GPU\d+\s", ln) and not re.match(r"(GPU|NIC)\d", (t := ln.split())[1])
    ]
    if not rows:
        return None
    n = len(rows)
    matrix = [r[1 : n + 1] for r in rows]
    return matrix if all(len(r) == n for r in matrix) else None


def _cuda(p: _Parsed) -> CudaInfo | None:
    # "CUDA runtime version" is `nvcc --version`, not the runtime torch loads. cuDNN is left out
    # on purpose: collect_env lists the system's ldconfig cuDNN files ("Probably one of the
    # following"), while a torch wheel loads its own copy; rules read CudaInfo.libraries as the
    # files a framework would load, so these would yield false cudnn-mismatch verdicts.
    nvcc = _known(p.fields.get("CUDA runtime version"))
    nvcc = nvcc if nvcc and _VERSION.match(nvcc) else None
    return CudaInfo(nvcc_version=nvcc) if nvcc else None


def cudnn_candidates(text: str) -> list[CudaLibrary]:
    """The cuDNN files collect_env's "cuDNN version" names, one per cuDNN copy (main library
    preferred over its parts). These are the system's (ldconfig, CUDNN_LIBRARY, the Windows
    toolkit), not necessarily the cuDNN torch loads, so ``read`` keeps them out of the Snapshot.
    """
    from envcheck.ingest._text import normalise

    reports = _split(normalise(text))
    if not reports:
        return []
    p = reports[0]
    lines = [p.fields.get("cuDNN version", ""), *p.more.get("cuDNN version", [])]
    by_dir: dict[str, list[str]] = {}
    for line in lines:
        path = line.strip()
        if not (path.startswith("/") or re.match(r"^[A-Za-z]:\\", path)):
            continue
        directory, _, base = path.replace("\\", "/").rpartition("/")
        if base.lower().startswith(("libcudnn", "cudnn")):
            by_dir.setdefault(directory, []).append(path)
    out: list[CudaLibrary] = []
    for paths in by_dir.values():
        main = [x for x in paths if re.search(r"(^|[/\\])(libcudnn\.(so|dylib)|cudnn64_)", x)]
        for path in main or paths[:1]:  # several cuDNN majors can sit side by side
            base = re.split(r"[/\\]", path)[-1]
            ver = re.search(r"\.so\.(\d+(?:\.\d+)*)$|^libcudnn\.(\d+(?:\.\d+)*)\.dylib$", base)
            version = (ver.group(1) or ver.group(2)) if ver else None
            out.append(
                CudaLibrary(name="cudnn", soname=base, path=path, version=version, origin=_origin(path))
            )
    return out


def _origin(path: str) -> str:
    """Where a pasted library path comes from, read from the path alone (no file access)."""
    low = path.replace("\\", "/").lower()
    if low.startswith("/usr/lib/wsl/"):
        return "wsl"
    if "/site-packages/" in low or "/dist-packages/" in low:
        return "wheel"
    if re.search(r"/(ana|mini)conda\d?/|/miniforge\d?/|/mambaforge/|/envs/", low):
        return "conda"
    if low.startswith(("/usr/local/cuda", "/opt/cuda")) or "nvidia gpu computing toolkit/cuda" in low:
        return "toolkit"
    return "system"


# --------------------------------------------------------------------------- system / cpu


def _system(f: dict[str, str]) -> SystemInfo | None:
    os_line = _known(f.get("OS"))
    plat = _known(f.get("Python platform")) or ""
    libc = _known(f.get("Libc version"))
    os_name: str | None = None
    low = (os_line or "").lower()
    if plat.startswith("Linux") or (libc or "").startswith("glibc"):
        os_name = "Linux"
    elif plat.startswith("Windows") or "windows" in low:
        os_name = "Windows"
    elif plat.startswith(("macOS", "Darwin")) or low.startswith(("macos", "mac osx", "mac os x")):
        os_name = "Darwin"
    elif os_line:  # collect_env names a Linux by its distribution (lsb_release or os-release)
        os_name = "Linux"

    distro, arch = os_line, None
    if os_line and (am := re.match(r"^(.*?)\s*\(([^()]+)\)$", os_line)) and am.group(2).lower() in _ARCHES:
        distro, arch = am.group(1), am.group(2)
    kernel = None
    if km := re.match(r"^Linux-(.+?)-(x86_64|aarch64|ppc64le|s390x|i686|armv7l)(?:-with-.*)?$", plat):
        kernel, arch = km.group(1), arch or km.group(2)
    if arch is None and (wm := re.search(r"\((AMD64|ARM64)\)\]", f.get("Python version", ""))):
        arch = wm.group(1)
    if arch and arch.lower() == "amd64":
        arch = "x86_64"

    gm = re.match(r"^glibc-(\S+)$", libc or "") or re.search(r"-with-glibc(\d+\.\d+)", plat)
    glibc = gm.group(1) if gm else None

    python = None
    if pm := re.match(r"^\s*(\d+\.\d+(?:\.\d+)?)", f.get("Python version", "")):
        python = PythonEnv(version=pm.group(1))
    container = None
    if kernel is not None:
        container = ContainerInfo(wsl="microsoft" in kernel.lower())
    if not any((os_name, distro, arch, kernel, glibc, python)):
        return None
    return SystemInfo(
        os=os_name, distro=distro, kernel=kernel, arch=arch, glibc=glibc, python=python, container=container
    )
