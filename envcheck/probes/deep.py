"""``--deep``: import each framework in its own child interpreter, all in parallel, and ask it what it sees.

A framework that segfaults, hangs or raises on import costs its own entry (``deep.ok=False`` with
the reason), never the report. After the import each child reads its own ``/proc/self/maps``:
the CUDA libraries it really loaded, and from where, which is what settles "which cuDNN did TF
pick up" questions that static files cannot.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from envcheck import _child
from envcheck.knowledge._version import cuda_text
from envcheck.models import FrameworkDevices, FrameworksInfo, LoadedLibrary
from envcheck.probes import _libs
from envcheck.probes.cuda import cudnn_version

if TYPE_CHECKING:
    from envcheck.probes import ProbeContext

#: Runs first in every child: the result dict, /proc/self/maps reading, the loaded cuDNN's version.
_PRELUDE = r"""
import os, sys, time, ctypes
result = {"ok": False, "error": None, "stage": "import"}

def mapped_libraries():
    seen = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    path = parts[5].strip()
                    if path.startswith("/") and ".so" in os.path.basename(path) and path not in seen:
                        seen.append(path)
    except OSError:
        pass
    return seen

def loaded_cudnn(paths):
    for p in paths:
        if os.path.basename(p).startswith("libcudnn.so"):
            try:
                lib = ctypes.CDLL(p)
                lib.cudnnGetVersion.restype = ctypes.c_size_t
                return int(lib.cudnnGetVersion())
            except Exception:
                return None
    return None

def finish(exc=None):
    if exc is not None:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        first = lines[0] if lines else ""
        result["error"] = "%s during %s: %s" % (type(exc).__name__, result["stage"], first)
    result["libraries"] = mapped_libraries()
    if result.get("cudnn_loaded") is None:
        result["cudnn_loaded"] = loaded_cudnn(result["libraries"])
    emit(result)
    sys.stderr.flush()
    os._exit(0)  # skip the framework's interpreter teardown: slow (TF ~0.8 s) and known to hang

emit(result)
_t0 = time.perf_counter()
"""

#: The frame around every framework's device query: time the import, mark the stage (so a crash
#: names it), report the version; any failure still sends what was gathered.
_FRAME = r"""
try:
    import {module}
    result["import_seconds"] = time.perf_counter() - _t0
    result["stage"] = "device query"
    sys.stderr.write("@@envcheck-stage@@ device query\n")
    emit(result)
    result["version"] = {name}.__version__
{query}    result["ok"] = True
    finish()
except BaseException as exc:
    finish(exc)
"""

#: Each framework's device query, indented to sit inside ``_FRAME``'s try block.
_TORCH = r"""
    result["cuda_build"] = torch.version.cuda
    available = bool(torch.cuda.is_available())
    count = torch.cuda.device_count() if available else 0
    result["gpu_available"] = available
    result["device_count"] = count
    result["devices"] = ["cpu"] + ["cuda:%d %s" % (i, torch.cuda.get_device_name(i)) for i in range(count)]
    # the arch flags directly: get_arch_list() of older torch says [] whenever no GPU is visible
    flags = getattr(torch._C, "_cuda_getArchFlags", None)
    archs = flags() if flags is not None else None
    result["arch_list"] = archs.split() if archs else list(torch.cuda.get_arch_list())
    if torch.backends.cudnn.is_available():
        result["cudnn_loaded"] = torch.backends.cudnn.version()
        compiled = getattr(getattr(torch._C, "_cudnn", None), "getCompileVersion", None)
        if compiled is not None:
            result["cudnn_build"] = ".".join(str(x) for x in compiled())
"""

_TENSORFLOW = r"""
    info = dict(tf.sysconfig.get_build_info())
    result["cuda_build"] = info.get("cuda_version")
    result["cudnn_build"] = info.get("cudnn_version")
    archs = info.get("cuda_compute_capabilities")
    result["arch_list"] = list(archs) if archs else ([] if info.get("is_cuda_build") is False else None)
    devices, gpus = [], 0
    for d in tf.config.list_physical_devices():
        name = d.name.replace("/physical_device:", "")
        if d.device_type == "GPU":
            gpus += 1
            try:
                name += " " + tf.config.experimental.get_device_details(d).get("device_name", "")
            except Exception:
                pass
        devices.append(name.strip())
    result["devices"] = devices
    result["device_count"] = gpus
    result["gpu_available"] = gpus > 0
"""

_JAX = r"""
    import importlib
    for plugin in ("jax_cuda13_plugin", "jax_cuda12_plugin"):
        try:
            versions = importlib.import_module(plugin + "._versions")
        except Exception:
            continue
        for key, func in (
            ("cuda_build", "cuda_runtime_build_version"),
            ("cudnn_build", "cudnn_build_version"),
            ("cudnn_loaded", "cudnn_get_version"),
        ):
            try:
                result[key] = int(getattr(versions, func)())
            except Exception:
                pass
        break
    devices = jax.devices()
    accel = [d for d in devices if d.platform != "cpu"]
    result["devices"] = [
        "%s:%d" % (d.platform, d.id) + ("" if d.device_kind.lower() == d.platform else " " + d.device_kind)
        for d in devices
    ]
    result["device_count"] = len(accel)
    result["gpu_available"] = any(d.platform in ("gpu", "cuda", "rocm") for d in accel)
"""

SNIPPETS: dict[str, str] = {
    name: _child.emit_snippet()
    + _PRELUDE
    + _FRAME.format(module=module, name=alias, query=query.lstrip("\n"))
    for name, module, alias, query in (
        ("torch", "torch", "torch", _TORCH),
        ("tensorflow", "tensorflow as tf", "tf", _TENSORFLOW),
        ("jax", "jax", "jax", _JAX),
    )
}


def _version(value: Any, decode: Callable[[int], str | None]) -> str | None:
    """Frameworks report "12.4" (torch, TF) or encoded ints (JAX's 12040); normalise to dotted."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return decode(value)
    return str(value) or None


def to_devices(res: _child.ChildResult, origin: Callable[[str], str]) -> FrameworkDevices:
    """One child's answer (possibly partial, possibly dead) -> FrameworkDevices."""
    value = res.value if isinstance(res.value, dict) else {}
    error = value.get("error")
    if not res.ok:
        stage = value.get("stage")
        error = f"{res.error} during {stage}" if stage else res.error
    libraries = [
        LoadedLibrary(soname=_libs.soname_of(p), path=p, origin=origin(p))
        for p in value.get("libraries") or []
        if isinstance(p, str) and _libs.is_gpu_library(p)
    ]
    arch = value.get("arch_list")
    count = value.get("device_count")
    imported = value.get("import_seconds")
    return FrameworkDevices(
        ok=bool(res.ok and value.get("ok")),
        error=error,
        version=value.get("version"),
        seconds=round(res.seconds, 3),
        import_seconds=round(imported, 3) if isinstance(imported, float) else None,
        gpu_available=value.get("gpu_available"),
        device_count=count if isinstance(count, int) else None,
        devices=[str(d) for d in value.get("devices") or []],
        cuda_build=_version(value.get("cuda_build"), cuda_text),
        cudnn_build=_version(value.get("cudnn_build"), cudnn_version),
        cudnn_loaded=_version(value.get("cudnn_loaded"), cudnn_version),
        arch_list=[str(a) for a in arch] if isinstance(arch, list) else None,
        loaded_libraries=libraries,
    )


#: stderr prefix of the children's "now in this stage" lines (live progress)
STAGE = "@@envcheck-stage@@"


def _stage_reporter(ctx: ProbeContext, name: str) -> Callable[[str], None] | None:
    progress = ctx.on_progress
    if progress is None:
        return None

    def on_line(line: str) -> None:
        if line.startswith(STAGE):
            progress(name, line[len(STAGE) :].strip())

    return on_line


def run_one(ctx: ProbeContext, name: str) -> FrameworkDevices:
    """Import ``name`` in a fresh child of ``ctx.python`` and report what it sees."""
    if ctx.on_progress is not None:
        ctx.on_progress(name, "import")
    try:
        res = _child.run_python(
            SNIPPETS[name],
            timeout=ctx.deep_timeout,
            python=ctx.python,
            env=dict(ctx.env),
            on_stderr=_stage_reporter(ctx, name),
        )
    finally:
        if ctx.on_progress is not None:
            ctx.on_progress(name, None)
    wheel_dirs = _libs.wheel_lib_dirs(_libs.python_paths(ctx))
    ld_path = [p for p in ctx.env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]

    def origin(path: str) -> str:
        return _libs.origin_of(
            path, wheel_dirs=wheel_dirs, ld_library_path=ld_path, conda_prefix=ctx.env.get("CONDA_PREFIX")
        )

    return to_devices(res, origin)


def attach(ctx: ProbeContext, info: FrameworksInfo) -> None:
    """Run every installed framework's child at once and store each answer in ``Framework.deep``."""
    todo = [fw for fw in info.frameworks if fw.installed and fw.name in SNIPPETS]
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="envcheck-deep") as pool:
        futures = {fw.name: pool.submit(run_one, ctx, fw.name) for fw in todo}
        for fw in todo:
            try:
                fw.deep = futures[fw.name].result()
            except Exception as exc:  # a bug here must not cost the static facts
                fw.deep = FrameworkDevices(ok=False, error=f"{type(exc).__name__}: {exc}")
