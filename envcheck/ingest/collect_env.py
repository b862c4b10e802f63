"""Read the text of PyTorch's ``python -m torch.utils.collect_env`` into a Snapshot.

collect_env is what people paste into bug reports; its format has grown since 2018 (ROCm,
Clang, Libc, CPU, XPU and allocator lines were added, ``Yes``/``No`` became ``True``/``False``)
and it differs on Windows (CPU from WMI) and macOS (device name from torch, a kext version in
place of a driver). Only what the text states becomes a fact; "Could not collect", "N/A" and
"No CUDA" stay None so that rules skip instead of guessing. Two traps are handled on purpose:
"CUDA runtime version" is nvcc's version (not the runtime torch uses), and "cuDNN version" lists
the system's libcudnn files (not the cuDNN torch was built with or loads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from envcheck.errors import UsageError
from envcheck.models import (
    ContainerInfo,
    CpuInfo,
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

#: Every "Key: value" line collect_env has printed since 2018, in template order.
KEYS = (
    "PyTorch version", "Is debug build", "CUDA used to build PyTorch", "ROCM used to build PyTorch",
    "OS", "GCC version", "Clang version", "CMake version", "Libc version", "Python version",
    "Python platform", "Is CUDA available", "CUDA runtime version", "CUDA_MODULE_LOADING set to",
    "GPU models and configuration", "Nvidia driver version", "cuDNN version", "Is XPU available",
    "XPU used to build PyTorch", "Intel GPU driver version", "Intel GPU models onboard",
    "Intel GPU models detected", "HIP runtime version", "MIOpen runtime version",
    "Is XNNPACK available", "Caching allocator config", "CPU", "Versions of relevant libraries",
)  # fmt: skip
_KEY_LINE = re.compile(r"^(" + "|".join(re.escape(k) for k in KEYS) + r"):[ \t]*(.*?)\s*$")
#: keys whose value may continue on the following lines
_MULTILINE = {"GPU models and configuration", "cuDNN version", "Intel GPU driver version",
              "Intel GPU models onboard", "Intel GPU models detected"}  # fmt: skip
#: fewer recognised lines than this is a fragment, not a report
MIN_KEYS = 4

_VERSION = re.compile(r"^\d+(\.\d+)+$")
_ARCHES = {"x86_64", "amd64", "aarch64", "arm64", "ppc64le", "s390x", "i686", "i386", "armv7l"}
_WIN_ARCH = {"0": "x86", "5": "arm", "9": "x86_64", "12": "arm64"}
#: companion packages of torch that collect_env's package filter shows
_TORCH_COMPANIONS = ("torchvision", "torchaudio", "torchtext", "torchdata", "triton",
                     "pytorch-triton", "pytorch-triton-rocm", "pytorch-triton-xpu")  # fmt: skip
_ARCH_WARNING = re.compile(r"^\s*(?P<name>\S.*?) with CUDA capability sm_(?P<cc>\d+) is not compatible", re.M)
_ARCH_SUPPORTED = re.compile(r"supports CUDA capabilities ((?:(?:sm|compute)_\d+\w?\s*)+)")


@dataclass
class _Package:
    manager: str  # "pip" or "conda"
    name: str
    version: str
    build: str | None = None
    channel: str | None = None


@dataclass
class _Parsed:
    fields: dict[str, str] = field(default_factory=dict)
    more: dict[str, list[str]] = field(default_factory=dict)
    cpu: list[str] = field(default_factory=list)
    libraries: list[str] = field(default_factory=list)


def looks_like(text: str) -> int:
    """How many collect_env lines ``text`` has (0 when it is something else)."""
    return len(_split(text).fields)


def parse(text: str, origin: str) -> Snapshot:
    """The Snapshot that a collect_env text states; raises UsageError for a fragment."""
    p = _split(text)
    if len(p.fields) < MIN_KEYS:
        raise UsageError(
            f"{origin}: only {len(p.fields)} collect_env line(s) found; the paste is cut short",
            hint="paste the whole output of `python -m torch.utils.collect_env`",
        )
    f = p.fields
    system = _system(f)
    is_mac = system is not None and system.os == "Darwin"
    packages = _packages(p.libraries)
    frameworks = _frameworks(p, packages, text)
    return Snapshot(
        source="collect_env",
        system=system,
        cpu=_cpu(p.cpu),
        nvidia=_nvidia(p, text, is_mac),
        cuda=_cuda(p),
        frameworks=frameworks,
    )


# --------------------------------------------------------------------------- splitting


def _split(text: str) -> _Parsed:
    p = _Parsed()
    state: str | None = None  # None, a multi-line key, "cpu" or "libs"
    for raw in text.split("\n"):
        line = raw.rstrip()
        m = _KEY_LINE.match(line)
        if state == "libs":
            if m and m.group(1) == "PyTorch version":  # a second report pasted after the first
                break
            p.libraries.append(line)
            continue
        if state == "cpu" and not (m and m.group(1) == "Versions of relevant libraries"):
            p.cpu.append(line)
            continue
        if m:
            key, value = m.group(1), m.group(2)
            if key in p.fields:  # a second report pasted after the first: keep the first
                break
            p.fields[key] = value
            state = {"CPU": "cpu", "Versions of relevant libraries": "libs"}.get(key)
            if key in _MULTILINE:
                state = key
                p.more[key] = []
            continue
        if state in _MULTILINE:
            if line.strip():
                p.more[state].append(line)
            elif p.more[state] or _has_value(p, state):
                state = None
    while p.cpu and not p.cpu[-1].strip():
        p.cpu.pop()
    return p


def _has_value(p: _Parsed, key: str) -> bool:
    """A blank line ends a multi-line value, unless the value has not started yet."""
    return bool(p.fields.get(key, "").strip())


def _known(value: str | None) -> str | None:
    """The value, or None for collect_env's ways of saying "unknown"."""
    if value is None:
        return None
    v = value.strip()
    low = v.lower()
    if not v or low in {"n/a", "no cuda", "none"} or low.startswith("could not collect"):
        return None
    return v


def _bool(value: str | None) -> bool | None:
    v = (value or "").strip().split("\n")[0].lower()
    return {"yes": True, "true": True, "no": False, "false": False}.get(v)


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# --------------------------------------------------------------------------- packages


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _packages(lines: list[str]) -> list[_Package]:
    out: list[_Package] = []
    for line in lines:
        m = re.match(r"^\[(pip3?|conda)\]\s+(.*)$", line.strip())
        if not m:
            continue
        manager, rest = ("conda" if m.group(1) == "conda" else "pip"), m.group(2).strip()
        if manager == "pip":
            pm = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", rest)
            if pm:
                out.append(_Package("pip", _norm(pm.group(1)), pm.group(2)))
        else:
            parts = rest.split()
            if len(parts) >= 2 and parts[0].lower() != "could":
                out.append(_Package("conda", _norm(parts[0]), parts[1],
                                    parts[2] if len(parts) > 2 else None,
                                    parts[3] if len(parts) > 3 else None))  # fmt: skip
    return out


def _package(packages: list[_Package], *names: str) -> _Package | None:
    """The pip entry for the first of ``names`` found, else the conda one."""
    for manager in ("pip", "conda"):
        for name in names:
            hit = next((p for p in packages if p.manager == manager and p.name == name), None)
            if hit:
                return hit
    return None


def _pip_collected(lines: list[str]) -> bool:
    """True when the pip list ran (so a package missing from it is really missing)."""
    pip = [ln for ln in lines if re.match(r"^\[pip3?\]", ln.strip())]
    return bool(pip) and not any("Could not collect" in ln for ln in pip)


# --------------------------------------------------------------------------- frameworks


def _frameworks(p: _Parsed, packages: list[_Package], text: str) -> FrameworksInfo | None:
    torch = _torch(p, packages, text)
    wheels = {
        pkg.name: pkg.version
        for pkg in packages
        if pkg.name.startswith("nvidia-") and (pkg.manager == "pip" or pkg.channel == "pypi")
    }
    if torch is None and not wheels:
        return None
    return FrameworksInfo(frameworks=[torch] if torch else [], nvidia_wheels=wheels or None)


def _torch(p: _Parsed, packages: list[_Package], text: str) -> Framework | None:
    f = p.fields
    version = _known(f.get("PyTorch version"))
    pkg = _package(packages, "torch", "pytorch")
    plugins = {n: c.version for n in _TORCH_COMPANIONS if (c := _package(packages, n)) is not None}
    if version is None:
        if pkg is not None:  # installed, but collect_env could not import it
            return Framework(name="torch", installed=True, distribution="torch", version=pkg.version,
                             plugins=plugins, error="collect_env could not import torch")  # fmt: skip
        if f.get("PyTorch version", "").strip() == "N/A" and _pip_collected(p.libraries):
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
    conda = _package([x for x in packages if x.manager == "conda"], "pytorch")
    if conda and conda.build and (cm := re.search(r"cudnn(\d+(?:\.\d+)*)", conda.build)):
        cudnn_build = cm.group(1)

    arch = _ARCH_SUPPORTED.search(text)
    arch_list = arch.group(1).split() if arch else None
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
        arch_list=arch_list,
        plugins=plugins,
        deep=deep,
    )


# --------------------------------------------------------------------------- nvidia / cuda


def _nvidia(p: _Parsed, text: str, is_mac: bool) -> NvidiaInfo | None:
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
            gpu.mig_devices = [*(gpu.mig_devices or []), MigDevice(
                index=int(mig.group(2)), uuid=mig.group(3),
                slices=int(mig.group(1)) if mig.group(1) else None)]  # fmt: skip
    for w in _ARCH_WARNING.finditer(text):  # torch's own warning states the compute capability
        cc = w.group("cc")
        for gpu in gpus:
            if gpu.name and _same_gpu(gpu.name, w.group("name")):
                gpu.compute_capability = f"{cc[:-1]}.{cc[-1]}"
    driver = _known(p.fields.get("Nvidia driver version"))
    # on macOS the value is the CUDA kext's version, not an NVIDIA driver version
    if driver is not None and (is_mac or not _VERSION.match(driver)):
        driver = None
    if not gpus and driver is None:
        return None
    return NvidiaInfo(driver_version=driver, gpus=gpus or None)


def _same_gpu(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return re.sub(r"^nvidia\s+", "", s.strip().lower())

    return norm(a) == norm(b)


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
    toolkit), not necessarily the cuDNN torch loads, so ``parse`` keeps them out of the Snapshot.
    """
    p = _split(text)
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
    return SystemInfo(os=os_name, distro=distro, kernel=kernel, arch=arch, glibc=glibc,
                      python=python, container=container)  # fmt: skip


def _cpu(lines: list[str]) -> CpuInfo | None:
    body = [ln for ln in lines if ln.strip()]
    if not body:
        return None
    kv: dict[str, str] = {}
    blocks = 1
    for line in body:
        if re.match(r"^-{5,}$", line.strip()):  # Windows: one block per processor package
            blocks += 1 if kv else 0
            continue
        m = re.match(r"^([A-Za-z][\w ()\-/]*?)\s*[:=]\s*(.*)$", line)
        if m:
            kv.setdefault(m.group(1).strip(), m.group(2).strip())
    if "Model name" in kv or "Vendor ID" in kv or "Flags" in kv:
        return _lscpu(kv)
    if "Name" in kv and ("Manufacturer" in kv or "MaxClockSpeed" in kv):
        return CpuInfo(
            model=kv.get("Name") or None,
            vendor=kv.get("Manufacturer") or None,
            arch=_WIN_ARCH.get(kv.get("Architecture", "")),
            sockets=blocks,
            mhz_current=_float(kv.get("CurrentClockSpeed")),
            mhz_max=_float(kv.get("MaxClockSpeed")),
        )
    if len(body) == 1 and not kv:  # macOS: sysctl machdep.cpu.brand_string
        return CpuInfo(model=body[0].strip())
    return None


def _lscpu(kv: dict[str, str]) -> CpuInfo:
    from envcheck.probes.cpu import ARM_FLAGS, X86_FLAGS

    arch = kv.get("Architecture") or None
    sockets = _int(kv.get("Socket(s)"))
    per_socket = _int(kv.get("Core(s) per socket"))
    flags = None
    if kv.get("Flags"):
        have = set(kv["Flags"].split())
        wanted = ARM_FLAGS if (arch or "").startswith(("aarch64", "arm")) or "asimd" in have else X86_FLAGS
        flags = [x for x in wanted if x in have]
    return CpuInfo(
        model=kv.get("Model name") or None,
        vendor=kv.get("Vendor ID") or None,
        arch=arch,
        sockets=sockets,
        cores=sockets * per_socket if sockets and per_socket else None,
        threads=_int(kv.get("CPU(s)")),
        mhz_current=_float(kv.get("CPU MHz")),
        mhz_max=_float(kv.get("CPU max MHz")),
        flags=flags,
        numa_nodes=_int(kv.get("NUMA node(s)")),
    )


def _int(v: str | None) -> int | None:
    return int(v) if v and v.strip().isdigit() else None


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v else None
    except ValueError:
        return None
