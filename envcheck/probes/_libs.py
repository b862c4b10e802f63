"""Find CUDA shared libraries the way frameworks do, and say where each file comes from.

Frameworks look for ``libcudnn.so.9`` & co. first in the pip wheels (``site-packages/nvidia/*/lib``,
via RUNPATH or explicit preloading), then through the dynamic loader (``LD_LIBRARY_PATH``, the
ldconfig cache), and some fall back to a toolkit (``/usr/local/cuda``). The same order here
lets the report name the file a framework would get, and ``origin_of`` lets it say why
(a system CUDA on LD_LIBRARY_PATH shadowing the wheel's cuDNN is a classic failure).
"""

from __future__ import annotations

import functools
import glob
import json
import os
import platform
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from envcheck import _child, _proc

if TYPE_CHECKING:
    from envcheck.probes import ProbeContext

#: Where a library file comes from, in the order ``origin_of`` decides it.
ORIGINS = ("wsl", "wheel", "ld_library_path", "conda", "toolkit", "system")

WSL_LIB_DIR = "/usr/lib/wsl/lib"
_TOOLKIT_PREFIXES = ("/usr/local/cuda", "/opt/cuda")
#: Environment variables that change an interpreter's sys.path.
_PATH_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONSAFEPATH", "PYTHONUSERBASE")


def python_paths(ctx: ProbeContext) -> list[str]:
    """``sys.path`` of the interpreter being inspected, under the context's environment.

    This interpreter's own ``sys.path`` when it is the same interpreter with the same path
    variables (no child needed); otherwise the inspected interpreter is asked, with a timeout.
    Empty entries (the current directory) are dropped. Raises nothing: [] when it cannot tell.
    """
    if is_this_interpreter(ctx):
        return [p for p in sys.path if p]
    env_key = tuple((k, ctx.env.get(k)) for k in _PATH_VARS)
    return list(_child_paths(ctx.python, env_key, ctx.timeout))


def is_this_interpreter(ctx: ProbeContext) -> bool:
    """True when ``ctx`` inspects this very interpreter with this process's module search path.

    Paths are compared as given, not resolved: two venvs share one real binary but not a sys.path.
    """
    same_env = all(ctx.env.get(k) == os.environ.get(k) for k in _PATH_VARS)
    return same_env and os.path.abspath(ctx.python) == os.path.abspath(sys.executable)


@functools.lru_cache(maxsize=8)
def _child_paths(python: str, env_key: tuple[tuple[str, str | None], ...], timeout: float) -> tuple[str, ...]:
    env = {k: v for k, v in os.environ.items() if k not in _PATH_VARS}
    env.update({k: v for k, v in env_key if v is not None})
    code = _child.emit_snippet() + "import sys\nemit(sys.path)\n"
    res = _child.run_python(code, timeout=timeout, python=python, env=env)
    if not res.ok or not isinstance(res.value, list):
        return ()
    return tuple(str(p) for p in res.value if p)


def _split_path_list(value: str | None) -> list[str]:
    return [p for p in (value or "").split(os.pathsep) if p]


def _ldconfig_arch_tag() -> str | None:
    """The tag ``ldconfig -p`` prints for this machine's 64-bit libraries (None: accept all)."""
    return {"x86_64": "x86-64", "aarch64": "AArch64", "ppc64le": "64bit"}.get(platform.machine())


def parse_ldconfig(text: str, arch_tag: str | None = None) -> dict[str, list[str]]:
    """soname -> paths, in cache order, from ``ldconfig -p`` output (other-arch entries dropped)."""
    cache: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S.*)$", line)
        if not m:
            continue
        soname, flags, path = m.group(1), m.group(2), m.group(3).strip()
        if arch_tag is not None and "," in flags and arch_tag not in flags:
            continue
        if arch_tag is not None and "," not in flags:
            continue  # "(libc6)" alone: a 32-bit library on a 64-bit machine
        cache.setdefault(soname, []).append(path)
    return cache


def ldconfig_cache(env: Mapping[str, str], timeout: float) -> tuple[dict[str, list[str]], str | None]:
    """The loader's cache (``ldconfig -p``) and why it is missing when it is."""
    path = os.pathsep.join([env.get("PATH", ""), "/sbin", "/usr/sbin"])
    exe = shutil.which("ldconfig", path=path)
    if exe is None:
        return {}, "ldconfig not found"
    res = _proc.run([exe, "-p"], timeout=timeout, env={"PATH": path, "LC_ALL": "C"})
    if not res.ok:
        return {}, res.error or f"ldconfig -p exited with {res.returncode}"
    return parse_ldconfig(res.stdout, _ldconfig_arch_tag()), None


def toolkit_roots(ctx: ProbeContext) -> list[str]:
    """Toolkit directories (machine paths): CUDA_HOME/CUDA_PATH, /usr/local/cuda[-*], /opt/cuda."""
    roots: list[str] = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if ctx.env.get(var):
            roots.append(os.path.normpath(ctx.env[var]))
    roots.append("/usr/local/cuda")
    local = ctx.path("/usr/local")
    roots += sorted(
        (f"/usr/local/{os.path.basename(p)}" for p in glob.glob(str(local / "cuda-*"))),
        key=_version_key,
        reverse=True,
    )
    roots.append("/opt/cuda")
    seen: list[str] = []
    for r in roots:
        if r not in seen and ctx.path(r).is_dir():
            seen.append(r)
    return seen


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", os.path.basename(path)))


def wheel_lib_dirs(sys_path: list[str]) -> list[str]:
    """``<site>/nvidia/*/lib`` directories of NVIDIA's CUDA wheels (``nvidia/cu13/lib`` for CUDA 13)."""
    found: list[str] = []
    for s in sys_path:
        found += sorted(d for d in glob.glob(os.path.join(s, "nvidia", "*", "lib")) if os.path.isdir(d))
    return found


@dataclass
class LibrarySearch:
    """The ordered directories a framework's loader would search, and how to name an origin."""

    site_dirs: list[str]
    wheel_dirs: list[str]
    ld_library_path: list[str]
    ldcache: dict[str, list[str]]
    toolkit_dirs: list[str]
    conda_prefix: str | None = None
    #: why part of the search is missing ("ldconfig not found")
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, ctx: ProbeContext, sys_path: list[str]) -> LibrarySearch:
        site = [os.path.normpath(p) for p in sys_path if os.path.isdir(p)]
        wheel = wheel_lib_dirs(site)
        ldcache, why = ldconfig_cache(ctx.env, ctx.timeout)
        toolkit: list[str] = []
        for root in toolkit_roots(ctx):
            for sub in ("lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"):
                d = str(ctx.path(root) / sub)
                if os.path.isdir(d) and os.path.realpath(d) not in {os.path.realpath(t) for t in toolkit}:
                    toolkit.append(d)
        return cls(
            site_dirs=site,
            wheel_dirs=wheel,
            ld_library_path=[os.path.normpath(p) for p in _split_path_list(ctx.env.get("LD_LIBRARY_PATH"))],
            ldcache=ldcache,
            toolkit_dirs=toolkit,
            conda_prefix=ctx.env.get("CONDA_PREFIX") or None,
            notes=[why] if why else [],
        )

    def candidates(self, soname: str) -> list[str]:
        """Files named ``soname`` in order: wheels, LD_LIBRARY_PATH, ldconfig, conda, WSL, toolkits."""
        found: list[str] = []

        def add(path: str) -> None:
            if path not in found and os.path.exists(path):
                found.append(path)

        for d in self.wheel_dirs + self.ld_library_path:
            add(os.path.join(d, soname))
        for p in self.ldcache.get(soname, []):
            add(p)
        if self.conda_prefix:  # conda's cudatoolkit/cudnn packages, reached through the RPATH of conda builds
            add(os.path.join(self.conda_prefix, "lib", soname))
        add(os.path.join(WSL_LIB_DIR, soname))
        for d in self.toolkit_dirs:
            add(os.path.join(d, soname))
        return found

    def origin(self, path: str) -> str:
        """wsl, wheel, ld_library_path, conda, toolkit or system for a library file."""
        return origin_of(
            path,
            wheel_dirs=self.wheel_dirs,
            ld_library_path=self.ld_library_path,
            conda_prefix=self.conda_prefix,
            toolkit_dirs=self.toolkit_dirs,
        )


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def origin_of(
    path: str,
    *,
    wheel_dirs: list[str] | tuple[str, ...] = (),
    ld_library_path: list[str] | tuple[str, ...] = (),
    conda_prefix: str | None = None,
    toolkit_dirs: list[str] | tuple[str, ...] = (),
) -> str:
    """Where ``path`` comes from. WSL's injected driver and pip wheels first (they name the file's
    owner whatever the route), then LD_LIBRARY_PATH (the route that shadows the rest), conda,
    a CUDA toolkit, and the system otherwise."""
    path = os.path.normpath(path)
    parent = os.path.dirname(path)
    if _under(path, "/usr/lib/wsl"):
        return "wsl"
    if any(_under(path, w) for w in wheel_dirs) or re.search(r"/(site|dist)-packages/", path):
        return "wheel"
    if any(os.path.normpath(d) == parent for d in ld_library_path):
        return "ld_library_path"
    if (conda_prefix and _under(path, conda_prefix)) or os.path.isdir(
        os.path.join(os.path.dirname(parent), "conda-meta")
    ):
        return "conda"
    if any(path.startswith(p) for p in _TOOLKIT_PREFIXES) or any(_under(path, d) for d in toolkit_dirs):
        return "toolkit"
    return "system"


def soname_of(filename: str) -> str:
    """The soname a mapped file most likely answers to: ``libcudnn.so.9.1.0`` -> ``libcudnn.so.9``.

    Read from the name, not the ELF header: exact for the NVIDIA libraries' usual
    ``lib<x>.so.<major>[.<minor>...]`` naming, approximate for exotic ones.
    """
    base = os.path.basename(filename)
    m = re.match(r"^(.+?\.so)((?:\.\d+)*)$", base)
    if not m:
        return base
    stem, parts = m.group(1), m.group(2).split(".")[1:]
    if stem in ("libcuda.so", "libnvidia-ml.so") or stem.startswith("libnvidia-"):
        return f"{stem}.1" if parts else stem  # driver libraries: libcuda.so.580.65.06 is libcuda.so.1
    if stem == "libcudart.so" and parts[:1] == ["11"]:
        return "libcudart.so.11.0"  # the CUDA 11 runtime's soname carries a ".0"
    return f"{stem}.{parts[0]}" if parts else stem


#: Libraries whose presence in a process map says which GPU stack it really uses.
GPU_LIBRARY_PATTERN = re.compile(
    r"^lib(cuda|cudart|cudnn\w*|cublas\w*|cufft\w*|curand|cusolver\w*|cusparse\w*|nccl|nvrtc\w*|"
    r"nvJitLink|nvidia-ml|cupti|nvToolsExt|cufile\w*|nvshmem\w*|nvperf\w*|"
    r"amdhip64|rocblas|MIOpen|rccl|hipblas\w*|tpu)([-.].*)?\.so(\.[\d.]+)?$"
)


def is_gpu_library(path: str) -> bool:
    """True for CUDA / ROCm / TPU runtime libraries (as named in /proc/<pid>/maps)."""
    return bool(GPU_LIBRARY_PATTERN.match(os.path.basename(path)))


def dumps(obj: object) -> str:
    """Compact JSON for passing plans to child interpreters."""
    return json.dumps(obj, separators=(",", ":"))
