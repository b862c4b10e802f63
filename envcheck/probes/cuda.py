"""CUDA user space: toolkits, nvcc, and the CUDA libraries as their own version functions report them.

Libraries are loaded and queried in ONE child interpreter (ctypes calls into a broken driver
can segfault or hang; the child keeps the report alive). The child emits its state after every
call, so a crash still leaves the answers gathered before it and names the call that died.
Library-only queries run first; calls that touch the driver (cuInit, device count, NVML) last.
"""

from __future__ import annotations

import glob
import json
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envcheck import _child, _proc
from envcheck.knowledge._version import cuda_text
from envcheck.models import CudaInfo, CudaLibrary, CudaToolkit
from envcheck.probes import _libs

if TYPE_CHECKING:
    from envcheck.probes import ProbeContext

#: short name -> sonames to look for, newest major first
LIBRARIES: dict[str, tuple[str, ...]] = {
    "cudart": ("libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"),
    "cuda": ("libcuda.so.1",),
    "cudnn": ("libcudnn.so.9", "libcudnn.so.8"),
    "cublas": ("libcublas.so.13", "libcublas.so.12", "libcublas.so.11"),
    "nccl": ("libnccl.so.2",),
    "nvml": ("libnvidia-ml.so.1",),
}

_CHILD_BODY = r"""
import ctypes, os, sys
PLAN = _j.loads(sys.argv[1])
state = {"libraries": [], "pending": None, "done": False}
handles = {}

def mapped(soname):
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and os.path.basename(parts[5].strip()).startswith(soname):
                    return parts[5].strip()
    except OSError:
        pass
    return None

def call(label, func):
    state["pending"] = label
    emit(state)
    try:
        return func()
    except Exception as exc:  # a missing symbol is data
        return "error: %s: %s" % (type(exc).__name__, exc)
    finally:
        state["pending"] = None

def int_out(fn, *args):
    v = ctypes.c_int(0)
    code = fn(*(args + (ctypes.byref(v),)))
    return [int(code), v.value]

for item in PLAN:
    rec = {"name": item["name"], "soname": item["soname"], "path": None, "found": None}
    rec.update(skipped=[], calls={})
    state["libraries"].append(rec)
    lib = None
    for cand in item["candidates"]:
        state["pending"] = "dlopen " + cand
        emit(state)
        try:
            lib = ctypes.CDLL(cand)
        except OSError as exc:
            rec["skipped"].append(str(exc))
            continue
        if os.path.isabs(cand):
            rec["found"], rec["path"] = cand, os.path.realpath(cand)
        else:
            rec["soname"] = cand
            rec["found"] = rec["path"] = mapped(cand)
        break
    state["pending"] = None
    if lib is None:
        continue
    handles.setdefault(item["name"], (lib, rec))
    name, calls = item["name"], rec["calls"]
    if name == "cudart":
        calls["cudaRuntimeGetVersion"] = call(
            "cudaRuntimeGetVersion", lambda: int_out(lib.cudaRuntimeGetVersion)
        )
    elif name == "cuda":
        calls["cuDriverGetVersion"] = call("cuDriverGetVersion", lambda: int_out(lib.cuDriverGetVersion))
    elif name == "cudnn":
        def _cudnn():
            lib.cudnnGetVersion.restype = ctypes.c_size_t
            return [0, int(lib.cudnnGetVersion())]
        calls["cudnnGetVersion"] = call("cudnnGetVersion", _cudnn)
    elif name == "cublas":
        calls["cublasGetProperty"] = call(
            "cublasGetProperty", lambda: [int_out(lib.cublasGetProperty, ctypes.c_int(i)) for i in (0, 1, 2)]
        )
    elif name == "nccl":
        calls["ncclGetVersion"] = call("ncclGetVersion", lambda: int_out(lib.ncclGetVersion))
    emit(state)

# calls that touch the driver come last: a hang or crash here keeps everything above
if "cudart" in handles:
    lib, rec = handles["cudart"]
    rec["calls"]["cudaDriverGetVersion"] = call(
        "cudaDriverGetVersion", lambda: int_out(lib.cudaDriverGetVersion)
    )
    emit(state)
if "cuda" in handles:
    lib, rec = handles["cuda"]
    rec["calls"]["cuInit"] = call("cuInit", lambda: [int(lib.cuInit(0)), None])
    emit(state)
if "cudart" in handles:
    lib, rec = handles["cudart"]
    rec["calls"]["cudaGetDeviceCount"] = call("cudaGetDeviceCount", lambda: int_out(lib.cudaGetDeviceCount))
    emit(state)
if "nvml" in handles:
    lib, rec = handles["nvml"]
    def _nvml():
        code = int(lib.nvmlInit_v2())
        if code != 0:
            return [code, None]
        buf = ctypes.create_string_buffer(96)
        got = int(lib.nvmlSystemGetNVMLVersion(buf, ctypes.c_uint(96)))
        lib.nvmlShutdown()
        return [got, buf.value.decode(errors="replace") if got == 0 else None]
    rec["calls"]["nvmlSystemGetNVMLVersion"] = call("nvmlInit", _nvml)
state["done"] = True
emit(state)
"""

CHILD_CODE = _child.emit_snippet() + _CHILD_BODY


# --------------------------------------------------------------------------- version decoding


def _major_minor_patch(encoded: int | None, wide_from: int) -> str | None:
    """NVIDIA's library encodings: 10000*major + 100*minor + patch from ``wide_from`` on, before it
    1000*major + 100*minor + patch; 0 or None -> None."""
    if not encoded:
        return None
    major = 10000 if encoded >= wide_from else 1000
    return f"{encoded // major}.{(encoded % major) // 100}.{encoded % 100}"


def cudnn_version(encoded: int | None) -> str | None:
    """cudnnGetVersion: the wide encoding since cuDNN 9 (90000), the narrow one for 8.x and older."""
    return _major_minor_patch(encoded, 90000)


def nccl_version(encoded: int | None) -> str | None:
    """ncclGetVersion: the wide encoding since NCCL 2.9 (10000 and up), the narrow one before."""
    return _major_minor_patch(encoded, 10000)


# --------------------------------------------------------------------------- toolkits and nvcc


def nvcc_version_of(nvcc: str, env: dict[str, str], timeout: float) -> str | None:
    """``nvcc --version`` -> "13.0.88" (the V-number), None when it does not answer."""
    res = _proc.run([nvcc, "--version"], timeout=timeout, env=env)
    if not res.ok:
        return None
    m = re.search(r"\bV(\d+\.\d+\.\d+)", res.stdout) or re.search(r"release (\d+\.\d+)", res.stdout)
    return m.group(1) if m else None


def which_all(program: str, path_var: str | None) -> list[str]:
    """Every executable ``program`` on PATH in order, like ``which -a`` (duplicates removed)."""
    found: list[str] = []
    for d in (path_var or "").split(os.pathsep):
        candidate = os.path.join(d or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK) and candidate not in found:
            found.append(candidate)
    return found


def toolkit_version(root: Path, env: dict[str, str], timeout: float) -> str | None:
    """A toolkit's version: version.json, version.txt, its runtime wheel's dist-info, nvcc, or its name."""
    try:
        data = json.loads((root / "version.json").read_text())
        version = data.get("cuda", {}).get("version") if isinstance(data, dict) else None
        if isinstance(version, str):
            return version
    except (OSError, ValueError):
        pass
    try:
        m = re.search(r"CUDA Version\s+(\S+)", (root / "version.txt").read_text())
        if m:
            return m.group(1)
    except OSError:
        pass
    # toolkits assembled from NVIDIA's pip wheels keep their dist-info (this is how ours is built)
    for pattern in ("dist-info/nvidia_cuda_runtime-*.dist-info", "nvidia_cuda_runtime-*.dist-info"):
        for d in sorted(glob.glob(str(root / pattern))):
            m = re.match(r"nvidia_cuda_runtime-(.+)\.dist-info$", os.path.basename(d))
            if m:
                return m.group(1)
    nvcc = root / "bin" / "nvcc"
    if nvcc.is_file():
        version = nvcc_version_of(str(nvcc), env, timeout)
        if version:
            return version
    m = re.search(r"cuda-(\d+(?:\.\d+)*)$", root.name)
    return m.group(1) if m else None


def _usr_local_cuda_target(ctx: ProbeContext) -> str | None:
    link = ctx.path("/usr/local/cuda")
    if not link.is_symlink():
        return None
    try:
        target = os.readlink(link)
    except OSError:
        return None
    return os.path.normpath(target if os.path.isabs(target) else os.path.join("/usr/local", target))


def find_toolkits(ctx: ProbeContext) -> list[CudaToolkit]:
    """Toolkit directories (symlinks such as /usr/local/cuda are reported as targets, not twice)."""
    env = dict(ctx.env)
    toolkits: list[CudaToolkit] = []
    for root in _libs.toolkit_roots(ctx):
        local = ctx.path(root)
        if local.is_symlink():
            continue
        nvcc = local / "bin" / "nvcc"
        toolkits.append(
            CudaToolkit(
                path=root,
                version=toolkit_version(local, env, ctx.timeout),
                nvcc=f"{root}/bin/nvcc" if nvcc.is_file() else None,
            )
        )
    return toolkits


# --------------------------------------------------------------------------- libraries


def library_plan(search: _libs.LibrarySearch) -> list[dict[str, Any]]:
    """What the child loads, in order: every soname found (newest first); a bare-name try when none is."""
    plan: list[dict[str, Any]] = []
    for name, sonames in LIBRARIES.items():
        entries = [
            {"name": name, "soname": so, "candidates": cands}
            for so in sonames
            if (cands := search.candidates(so))
        ]
        plan += entries or [{"name": name, "soname": None, "candidates": list(sonames)}]
    return plan


def _code_value(call: Any) -> tuple[int | None, Any, str | None]:
    """A child call record [code, value] or "error: ..." -> (code, value, error)."""
    if isinstance(call, list) and len(call) == 2:
        return (call[0] if isinstance(call[0], int) else None), call[1], None
    if isinstance(call, str):
        return None, None, call
    return None, None, None


def _library_version(name: str, calls: dict[str, Any]) -> tuple[str | None, str | None]:
    """Version string and error from one library's version call."""
    if name == "cudart":
        code, value, err = _code_value(calls.get("cudaRuntimeGetVersion"))
        return (cuda_text(value) if code == 0 else None), err or (
            f"cudaRuntimeGetVersion returned {code}" if code not in (None, 0) else None
        )
    if name == "cuda":
        code, value, err = _code_value(calls.get("cuDriverGetVersion"))
        return (cuda_text(value) if code == 0 else None), err
    if name == "cudnn":
        code, value, err = _code_value(calls.get("cudnnGetVersion"))
        return cudnn_version(value), err
    if name == "nccl":
        code, value, err = _code_value(calls.get("ncclGetVersion"))
        return (nccl_version(value) if code == 0 else None), err
    if name == "cublas":
        props = calls.get("cublasGetProperty")
        if isinstance(props, list) and all(isinstance(p, list) and p[0] == 0 for p in props):
            return ".".join(str(p[1]) for p in props), None
        return None, props if isinstance(props, str) else None
    if name == "nvml":
        code, value, err = _code_value(calls.get("nvmlSystemGetNVMLVersion"))
        if code == 0 and value:
            return str(value), None
        return None, err or (f"nvmlInit returned {code}" if code is not None else None)
    return None, None


def _version_from_filename(path: str | None) -> str | None:
    """``libnvidia-ml.so.580.65.06`` -> "580.65.06": the driver libraries carry the driver version."""
    m = re.search(r"\.so\.(\d+\.\d+(?:\.\d+)?)$", path or "")
    return m.group(1) if m else None


def apply_child_state(
    info: CudaInfo, state: dict[str, Any] | None, why: str | None, search: _libs.LibrarySearch
) -> None:
    """Fill ``info`` from the child's (possibly partial) state; ``why`` is how the child ended badly."""
    if not isinstance(state, dict):
        info.libraries = None
        info.error = f"library checks unavailable: {why or 'no answer'}"
        return
    pending = state.get("pending")
    libraries: list[CudaLibrary] = []
    for rec in state.get("libraries", []):
        name = rec.get("name", "?")
        calls = rec.get("calls") or {}
        path = rec.get("path")
        version, error = _library_version(name, calls)
        if path is None:
            tried = ", ".join(LIBRARIES.get(name, ())) if rec.get("soname") is None else rec.get("soname")
            error = f"not found: {tried}"
            skipped = rec.get("skipped") or []
            if skipped and any("No such file" not in s and "cannot open" not in s for s in skipped):
                error = f"could not load: {skipped[-1]}"
        elif name == "nvml" and version is None:
            version = _version_from_filename(path)
        if rec.get("skipped") and path is not None:
            error = "; ".join(filter(None, [error, f"skipped {len(rec['skipped'])}: {rec['skipped'][0]}"]))
        libraries.append(
            CudaLibrary(
                name=name,
                soname=rec.get("soname"),
                path=path,
                version=version,
                origin=search.origin(rec.get("found") or path) if path else None,
                error=error,
            )
        )
    if pending and why:  # the child died or hung inside this call: say so on the library it concerns
        target = _pending_library(pending)
        for lib in reversed(libraries):
            if lib.name == target:
                lib.error = f"{why} during {pending}"
                break
        else:
            info.error = f"{why} during {pending}"
    elif why and not state.get("done"):
        info.error = f"library checks incomplete: {why}"
    info.libraries = libraries
    _fill_runtime_numbers(info, state)


#: the child's call labels -> the library they belong to
_CALL_LIBRARY = {
    "cudaRuntimeGetVersion": "cudart",
    "cudaDriverGetVersion": "cudart",
    "cudaGetDeviceCount": "cudart",
    "cuDriverGetVersion": "cuda",
    "cuInit": "cuda",
    "cudnnGetVersion": "cudnn",
    "cublasGetProperty": "cublas",
    "ncclGetVersion": "nccl",
    "nvmlInit": "nvml",
}


def _pending_library(call: str) -> str:
    """The library a pending child call ("cuInit", "dlopen /x/libcudnn.so.9") concerns."""
    if call.startswith("dlopen "):
        base = os.path.basename(call[len("dlopen ") :])
        return next((n for n, sos in LIBRARIES.items() if any(base.startswith(s) for s in sos)), "?")
    return _CALL_LIBRARY.get(call, "?")


def _fill_runtime_numbers(info: CudaInfo, state: dict[str, Any]) -> None:
    """Runtime / driver / device-count numbers from the first (newest) cudart and libcuda loaded."""
    loaded = [r for r in state.get("libraries", []) if r.get("path")]
    cudart = next((r for r in loaded if r.get("name") == "cudart"), None)
    libcuda = next((r for r in loaded if r.get("name") == "cuda"), None)
    if cudart is not None:
        calls = cudart.get("calls") or {}
        code, value, _ = _code_value(calls.get("cudaRuntimeGetVersion"))
        info.runtime_version = value if code == 0 else None
        code, value, _ = _code_value(calls.get("cudaDriverGetVersion"))
        info.driver_version = value if code == 0 else None
        code, value, _ = _code_value(calls.get("cudaGetDeviceCount"))
        info.device_count_code = code
        info.device_count = value if code == 0 else None
    if libcuda is not None:
        calls = libcuda.get("calls") or {}
        code, _, _ = _code_value(calls.get("cuInit"))
        info.cu_init_code = code
        if info.driver_version is None and cudart is None:
            code, value, _ = _code_value(calls.get("cuDriverGetVersion"))
            info.driver_version = value if code == 0 else None


class LibraryCheck:
    """The library child, started early (it is the slowest part of the default report)."""

    def __init__(self, ctx: ProbeContext) -> None:
        self.search = _libs.LibrarySearch.build(ctx, _libs.python_paths(ctx))
        self.child = _child.spawn_python(
            CHILD_CODE,
            timeout=ctx.timeout,
            python=ctx.python,
            env=dict(ctx.env),
            args=[_libs.dumps(library_plan(self.search))],
            stdlib_only=True,  # ctypes and json: the plan already names every library path
        )

    def finish(self, info: CudaInfo) -> None:
        """Wait for the child and fill ``info`` with what it found."""
        res = self.child.wait()
        state = res.value if isinstance(res.value, dict) else None
        apply_child_state(info, state, None if res.ok else res.error, self.search)


def start(ctx: ProbeContext) -> LibraryCheck:
    """Start loading and querying the CUDA libraries in one child interpreter; returns at once."""
    return LibraryCheck(ctx)


# --------------------------------------------------------------------------- probe


def probe(ctx: ProbeContext, started: LibraryCheck | None = None) -> CudaInfo:
    """Toolkits, nvcc, CUDA_HOME and the libraries' own versions; never raises for the machine's sake.

    ``started`` is a library check begun earlier with :func:`start` (``collect`` gives it a head start).
    """
    info = CudaInfo()
    check = started or start(ctx)
    worker = threading.Thread(target=check.finish, args=(info,), daemon=True)
    worker.start()  # the child runs while toolkits and nvcc are read
    env = dict(ctx.env)
    info.toolkits = find_toolkits(ctx)
    info.usr_local_cuda_target = _usr_local_cuda_target(ctx)
    info.cuda_home = ctx.env.get("CUDA_HOME") or ctx.env.get("CUDA_PATH") or None
    nvccs = which_all("nvcc", ctx.env.get("PATH"))
    info.nvcc_on_path = nvccs
    info.nvcc_versions = {n: nvcc_version_of(n, env, ctx.timeout) for n in nvccs}
    info.nvcc_version = info.nvcc_versions[nvccs[0]] if nvccs else None
    worker.join(ctx.timeout + 5)
    if worker.is_alive():
        info.error = f"library checks did not finish within {ctx.timeout:g}s"
    return info
