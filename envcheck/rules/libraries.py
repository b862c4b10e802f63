"""CUDA user-space libraries against what the frameworks were built with: cuDNN too old,
LD_LIBRARY_PATH shadowing the wheels' libraries, nvcc of another CUDA major (diagnostics-anchors
b4, b10, b11)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from envcheck.knowledge import builds
from envcheck.knowledge._version import cuda_mm, cudnn_tuple, vstr
from envcheck.models import Finding, Framework, Severity, Snapshot
from envcheck.rules import _facts as F
from envcheck.rules._base import MissingFacts, need, rule

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

#: CUDA libraries that pip wheels bring and that an LD_LIBRARY_PATH entry can shadow
_WHEEL_LIBS = (
    "libcudart",
    "libcublas",
    "libcublasLt",
    "libcudnn",
    "libcusparse",
    "libcufft",
    "libcurand",
    "libcusolver",
    "libnvJitLink",
    "libnccl",
    "libnvrtc",
    "libcupti",
)


def _cudnn_build(fw: Framework) -> tuple[str, tuple[int, ...]] | None:
    """What cuDNN the framework was built against, and where we read it."""
    candidates = [
        ("framework (imported)", fw.deep.cudnn_build if fw.deep else None),
        ("framework build facts", fw.cudnn_build),
    ]
    row = F.torch_release_build(fw)
    if row:
        candidates.append(("PyTorch release matrix", row.cudnn))
    for where, value in candidates:
        t = cudnn_tuple(value)
        if t:
            return where, t
    return None


def _cudnn_loaded(s: Snapshot, fw: Framework, cuda_major: int | None) -> tuple[str, tuple[int, ...]] | None:
    """The cuDNN the framework loads (or would load), and where we read it."""
    if fw.deep and fw.deep.cudnn_loaded and (t := cudnn_tuple(fw.deep.cudnn_loaded)):
        return "loaded by the framework", t
    wheels = s.frameworks.nvidia_wheels if s.frameworks else None
    if wheels and cuda_major and (v := wheels.get(f"nvidia-cudnn-cu{cuda_major}")) and (t := cudnn_tuple(v)):
        return f"nvidia-cudnn-cu{cuda_major} wheel", t
    for lib in (s.cuda.libraries or []) if s.cuda else []:
        if lib.name == "cudnn" and lib.version and (t := cudnn_tuple(lib.version)):
            return f"{lib.path} ({lib.origin or 'system'})", t
    return None


@rule(
    "cudnn-mismatch",
    "the cuDNN the framework loads is a different major, or an older minor, than it was built with",
    E,
)
def cudnn_mismatch(s: Snapshot) -> Iterator[Finding]:
    judged = 0
    for fw in F.frameworks(s):
        if F.build_kind(fw) != "cuda":
            continue
        built = _cudnn_build(fw)
        mm = F.framework_cuda(fw)
        loaded = _cudnn_loaded(s, fw, mm[0] if mm else None)
        if built is None or loaded is None:
            continue
        judged += 1
        (b_from, b), (l_from, lv) = built, loaded
        # cuDNN: same major, and a minor at least the build's (TF/XLA/JAX wording; torch likewise)
        ok = lv[0] == b[0] and (len(b) < 2 or lv[1:2] >= b[1:2])
        if ok:
            continue
        cuda_major = mm[0] if mm else 12
        want = vstr(b[:2]) if len(b) >= 2 else str(b[0])
        # nvidia-cudnn-cuNN wheels exist from CUDA 11, and TensorFlow before 2.14 never loads them
        wheel = cuda_major >= 11 and builds.wheel_cuda(fw.name, fw.version) is not False
        commands = [f'pip install "nvidia-cudnn-cu{cuda_major}>={want},<{b[0] + 1}"'] if wheel else []
        fix = f"Install cuDNN {b[0]}.x >= {want} for CUDA {cuda_major}" + ("" if wheel else " system-wide")
        if "(ld_library_path)" in l_from or "(system)" in l_from or "(toolkit)" in l_from:
            fix += " and take the older system cuDNN off LD_LIBRARY_PATH"
        yield Finding(
            id="cudnn-mismatch",
            severity=E,
            summary=f"{fw.name} was built with cuDNN {vstr(b)} but gets cuDNN {vstr(lv)}",
            facts={
                "framework": fw.name,
                "cudnn_built": vstr(b),
                "built_from": b_from,
                "cudnn_loaded": vstr(lv),
                "loaded_from": l_from,
            },
            fix=fix + ".",
            commands=commands,
            subject=fw.name,
        )
    if judged == 0 and any(F.build_kind(fw) == "cuda" for fw in F.frameworks(s)):
        raise MissingFacts("cuDNN build or loaded version unknown")


def _cuda_lib_dir(path: str) -> bool:
    """A directory that by its name holds CUDA libraries (/usr/local/cuda-11.8/lib64, .../cudnn/lib)."""
    p = path.lower()
    return any(word in p for word in ("cuda", "cudnn", "tensorrt", "/nvidia"))


@rule(
    "ld-library-path-shadow",
    "LD_LIBRARY_PATH puts system CUDA libraries ahead of the ones the framework's pip wheels bring",
    W,
)
def ld_library_path_shadow(s: Snapshot) -> Iterator[Finding]:
    system = need(s.system, "environment variables")
    ld = system.env.get("LD_LIBRARY_PATH")
    if not ld:
        return
    wheels = need(s.frameworks.nvidia_wheels if s.frameworks else None, "nvidia-* wheels")
    if not wheels:
        return  # without wheels the system libraries are the only ones: nothing to shadow
    entries = [e for e in ld.split(":") if e]
    loaded_bad = sorted(
        {
            lib.path
            for fw in F.frameworks(s)
            if fw.deep
            for lib in fw.deep.loaded_libraries
            if lib.origin == "ld_library_path" and lib.soname.startswith(_WHEEL_LIBS)
        }
    )
    found_bad = sorted(
        {
            lib.path
            for lib in ((s.cuda.libraries or []) if s.cuda else [])
            if lib.origin == "ld_library_path"
            and lib.path
            and lib.name in ("cudart", "cudnn", "cublas", "nccl")
        }
    )
    suspects = [e for e in entries if _cuda_lib_dir(e)]
    culprits = sorted({os.path.dirname(p) for p in loaded_bad + found_bad}) or suspects
    if not culprits:
        return
    keep = [e for e in entries if e not in culprits]
    severity = E if loaded_bad else W
    commands = [f'export LD_LIBRARY_PATH="{":".join(keep)}"' if keep else "unset LD_LIBRARY_PATH"]
    yield Finding(
        id="ld-library-path-shadow",
        severity=severity,
        summary=(
            f"LD_LIBRARY_PATH makes the framework load {len(loaded_bad)} CUDA libraries from outside its "
            "wheels"
            if loaded_bad
            else "LD_LIBRARY_PATH lists CUDA directories that can shadow the pip wheels' CUDA libraries"
        ),
        facts={
            "LD_LIBRARY_PATH": entries,
            "entries_to_remove": culprits,
            "loaded_from_ld_library_path": loaded_bad,
            "nvidia_wheels": sorted(wheels),
        },
        fix=(
            "The loader reads LD_LIBRARY_PATH before the wheels' RUNPATH, so an older system CUDA wins "
            "(undefined symbol __nvJitLink..., wrong cuDNN). Remove these entries for this environment."
        ),
        commands=commands,
    )


@rule(
    "cuda-toolkit-mismatch",
    "the nvcc on PATH is another CUDA major than the framework's build: only "
    "matters when compiling CUDA extensions",
    INFO,
)
def cuda_toolkit_mismatch(s: Snapshot) -> Iterator[Finding]:
    cuda = need(s.cuda, "CUDA toolkit facts")
    nvcc = cuda.nvcc_version
    if nvcc is None and cuda.nvcc_versions:
        nvcc = next((v for v in cuda.nvcc_versions.values() if v), None)
    if nvcc is None:
        if cuda.nvcc_on_path is None and cuda.nvcc_versions is None:
            raise MissingFacts("nvcc version unknown")
        return  # no nvcc at all: nothing to mismatch (running needs no toolkit)
    nv_mm = cuda_mm(nvcc)
    for fw in F.frameworks(s):
        if fw.name != "torch" or F.build_kind(fw) != "cuda":
            continue
        mm = F.framework_cuda(fw)
        if mm is None or nv_mm is None or mm[0] == nv_mm[0]:
            continue
        match = next((t for t in cuda.toolkits or [] if (tm := cuda_mm(t.version)) and tm[0] == mm[0]), None)
        windows = s.system is not None and s.system.os == "Windows"
        if match:
            commands = [f"export CUDA_HOME={match.path} PATH={match.path}/bin:$PATH"]
        elif windows:
            commands = [
                f"install CUDA Toolkit {mm[0]}.{mm[1]} (developer.nvidia.com/cuda-toolkit-archive), "
                "then set CUDA_HOME to its folder"
            ]
        else:
            commands = [f"sudo apt-get install -y cuda-toolkit-{mm[0]}-{mm[1]}"]
        yield Finding(
            id="cuda-toolkit-mismatch",
            severity=INFO,
            summary=f"nvcc is CUDA {nvcc} but {fw.name} was built with CUDA {mm[0]}.{mm[1]}: "
            "extension builds would fail",
            facts={
                "nvcc_version": nvcc,
                "framework": fw.name,
                "framework_cuda": f"{mm[0]}.{mm[1]}",
                "toolkits": [t.path for t in cuda.toolkits or []],
                "CUDA_HOME": cuda.cuda_home,
            },
            fix=(
                "Running needs no toolkit. To compile extensions (flash-attn, apex, cpp_extension), point "
                f"CUDA_HOME and PATH at a CUDA {mm[0]}.x toolkit"
                + (f" ({match.path})" if match else f"; install toolkit {mm[0]}.{mm[1]}")
                + ". nvidia-smi's 'CUDA Version' is the driver's ceiling, not a toolkit."
            ),
            commands=commands,
            subject=fw.name,
        )
