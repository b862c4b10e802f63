"""The framework wheels: a CPU build on a GPU machine, a Python the release has no wheel for, a
CUDA build that sees no GPU, TensorFlow without its CUDA libraries (diagnostics-anchors b1, b3)."""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.knowledge import builds, coverage
from envcheck.knowledge._version import cudnn_tuple, vtuple
from envcheck.models import Finding, Framework, Severity, Snapshot
from envcheck.rules import _facts as F
from envcheck.rules import _fixes
from envcheck.rules._base import MissingFacts, need, rule

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


@rule(
    "cpu-only-wheel",
    "a CPU-only build of torch, TensorFlow or JAX is installed on a machine with an NVIDIA GPU",
    E,
)
def cpu_only_wheel(s: Snapshot) -> Iterator[Finding]:
    fws = F.frameworks(s)
    if not fws:
        return
    gpu = F.has_nvidia_gpu(s)
    if gpu is None:
        raise MissingFacts("whether an NVIDIA GPU is present unknown")
    if not gpu:
        return
    kinds = {fw.name: F.build_kind(fw) for fw in fws}
    if all(k is None for k in kinds.values()):
        raise MissingFacts("build kind (CPU or CUDA) of the installed frameworks unknown")
    for fw in fws:
        if kinds[fw.name] != "cpu":
            continue
        fix = _fixes.gpu_build(s, fw)
        windows = (
            fw.name == "tensorflow" and s.system is not None and s.system.os == "Windows" and not F.is_wsl(s)
        )
        yield Finding(
            id="cpu-only-wheel",
            severity=E,
            summary=f"{fw.name} {fw.version or ''} is a CPU-only build but this machine has an NVIDIA GPU"
            + (" (TensorFlow has no GPU build for native Windows after 2.10)" if windows else ""),
            facts={
                "framework": fw.name,
                "version": fw.version,
                "distribution": fw.distribution,
                "build": kinds[fw.name],
                "gpus": [g.name for g in (s.nvidia.gpus or [])] if s.nvidia else [],
            },
            # a fix that names no build (none exists, or the tables lack the release) is said as it is
            fix=f"Reinstall {fw.name} as a CUDA build: {fix.why}." if fix.build else f"{fix.why}.",
            commands=fix.commands,
            subject=fw.name,
        )


@rule("python-unsupported", "the installed framework release publishes no wheels for this Python version", W)
def python_unsupported(s: Snapshot) -> Iterator[Finding]:
    py = need(F.python_version(s), "Python version")
    for fw in F.frameworks(s):
        if fw.name == "jax" or not fw.version:
            continue
        release = builds.release_of(fw.name, fw.version)
        rows = builds.builds(fw.name, release) if release else []
        if not rows or rows[0].supports_python(py) is not False:
            continue
        b = rows[0]
        newer = [
            r
            for r in builds.releases(fw.name)
            if (vtuple(r) or ()) > (vtuple(release) or ())
            and builds.builds(fw.name, r)[0].supports_python(py)
        ]
        target = ".".join(newer[0].split(".")[:2]) if newer else None
        commands = [f'pip install "{fw.distribution or fw.name}=={target}.*"'] if target else []
        yield Finding(
            id="python-unsupported",
            severity=W,
            summary=f"{fw.name} {fw.version} has wheels for Python {b.python_min}-{b.python_max}, not {py}",
            facts={
                "framework": fw.name,
                "version": fw.version,
                "python": py,
                "supported": f"{b.python_min}-{b.python_max}",
            },
            fix=(
                f"Use a Python {b.python_min}-{b.python_max} environment"
                + (
                    f", or move to {fw.name} {target}, the first release with wheels for Python {py}"
                    if target
                    else ""
                )
                + ". A build made for another Python may be a source build without CUDA."
            ),
            commands=commands,
            subject=fw.name,
        )


@rule(
    "framework-no-gpu",
    "a CUDA build of a framework, imported in a child process, sees no GPU although NVML lists one",
    E,
)
def framework_no_gpu(s: Snapshot) -> Iterator[Finding]:
    fws = [fw for fw in F.frameworks(s) if F.build_kind(fw) == "cuda"]
    deep = [fw for fw in fws if fw.deep is not None and fw.deep.ok]
    if not fws:
        return
    if not deep:
        raise MissingFacts("no framework was imported (run with --deep)")
    nv = need(s.nvidia, "NVIDIA facts")
    if not (nv.nvml and nv.nvml.ok and nv.gpus):
        return  # no working driver/GPU: no-driver, container-no-gpu and friends say why
    for fw in deep:
        assert fw.deep is not None
        sees = fw.deep.gpu_available if fw.deep.gpu_available is not None else (fw.deep.device_count or 0) > 0
        if sees:
            continue
        commands: list[str] = []
        fix = "See the other findings (visible-devices, driver-too-old, cudnn-mismatch) for the cause."
        if fw.name == "tensorflow":
            commands = _fixes.gpu_build(s, fw).commands
            fix = (
                "TensorFlow skips the GPU when it cannot dlopen CUDA/cuDNN: install the and-cuda wheels and "
                "keep "
                "system CUDA off LD_LIBRARY_PATH."
            )
        yield Finding(
            id="framework-no-gpu",
            severity=E,
            summary=f"{fw.name} {fw.version or ''} (CUDA {fw.cuda_build}) sees no GPU; "
            f"NVML lists {len(nv.gpus)}",
            facts={
                "framework": fw.name,
                "gpu_available": fw.deep.gpu_available,
                "device_count": fw.deep.device_count,
                "nvml_gpus": len(nv.gpus),
                "CUDA_VISIBLE_DEVICES": (s.system.env.get("CUDA_VISIBLE_DEVICES") if s.system else None),
            },
            fix=fix,
            commands=commands,
            subject=fw.name,
        )


@rule(
    "cuda-libs-missing",
    "TensorFlow is a CUDA build but neither the nvidia-* wheels nor a system "
    "cuDNN of its major are installed, so it silently runs on CPU",
    E,
)
def cuda_libs_missing(s: Snapshot) -> Iterator[Finding]:
    tf = next((fw for fw in F.frameworks(s) if fw.name == "tensorflow"), None)
    if tf is None or F.build_kind(tf) != "cuda":
        return
    if builds.wheel_cuda("tensorflow", tf.version) is False:
        yield from _system_cuda_missing(s, tf)
        return
    wheels = need(s.frameworks.nvidia_wheels if s.frameworks else None, "nvidia-* wheels")
    major = (cudnn_tuple(tf.cudnn_build) or (None,))[0]
    cuda_major = (F.framework_cuda(tf) or (None, None))[0]
    has_wheel = any(n.startswith("nvidia-cudnn") for n in wheels)
    libs = s.cuda.libraries if s.cuda else None
    system_cudnn = [
        lib
        for lib in libs or []
        if lib.name == "cudnn"
        and lib.path
        and not lib.error
        and (major is None or (cudnn_tuple(lib.version) or (major,))[0] == major)
    ]
    if has_wheel or system_cudnn:
        return
    if libs is None:
        raise MissingFacts("system cuDNN libraries unknown")
    commands = _fixes.gpu_build(s, tf).commands
    yield Finding(
        id="cuda-libs-missing",
        severity=E,
        summary=f"TensorFlow {tf.version or ''} needs cuDNN {major or '?'} and CUDA {cuda_major or '?'} "
        "libraries, and none are installed",
        facts={
            "tensorflow_cuda": tf.cuda_build,
            "tensorflow_cudnn": tf.cudnn_build,
            "nvidia_wheels": sorted(wheels),
            "system_cudnn": [],
        },
        fix="Install TensorFlow with its and-cuda extra, which pulls matching CUDA and cuDNN wheels.",
        commands=commands,
        subject="tensorflow",
    )


def _system_cuda_missing(s: Snapshot, tf: Framework) -> Iterator[Finding]:
    """TensorFlow before 2.14 has no and-cuda wheels: it dlopens the system's CUDA runtime of the
    release it was built with, and sees no GPU (silently, on CPU) when only another CUDA is there."""
    release = builds.release_of("tensorflow", tf.version or "")
    row = builds.builds("tensorflow", release)[0] if release else None
    mm = F.framework_cuda(tf) or (row.cuda_mm if row else None)
    if mm is None:
        raise MissingFacts("the CUDA TensorFlow was built with unknown")
    libs = need(s.cuda.libraries if s.cuda else None, "system CUDA libraries")
    cudart = [lib for lib in libs if lib.name == "cudart" and lib.path and not lib.error]
    if not cudart:
        raise MissingFacts("no CUDA runtime (libcudart) listed")  # a listing that never looked for it
    if any(F.cudart_serves(lib.version, mm) for lib in cudart):
        return
    exact = "exactly " if mm[0] < 11 else ""
    cudnn = tf.cudnn_build or (row.cudnn if row else None)
    found = sorted({lib.version or lib.soname or "?" for lib in cudart})
    yield Finding(
        id="cuda-libs-missing",
        severity=E,
        summary=f"TensorFlow {tf.version or ''} loads the system's CUDA {exact}{mm[0]}.{mm[1]}, and the "
        f"system has only CUDA {', '.join(found)}",
        facts={
            "tensorflow_cuda": f"{mm[0]}.{mm[1]}",
            "tensorflow_cudnn": cudnn,
            "cudart_found": [lib.path for lib in cudart],
            "and_cuda_wheels": False,
        },
        fix=(
            f"TensorFlow {tf.version or ''} predates the and-cuda wheels (2.14): install CUDA {mm[0]}.{mm[1]}"
            + (f" and cuDNN {cudnn}" if cudnn else "")
            + " beside the other toolkit and put its lib64 on LD_LIBRARY_PATH"
            + (f" (TensorFlow looks for libcudart.so.{mm[0]}.{mm[1]})" if mm[0] < 11 else "")
            + ", or move to TensorFlow 2.14 or later with its and-cuda extra."
        ),
        commands=[f"sudo apt-get install -y cuda-toolkit-{mm[0]}-{mm[1]}"] if mm >= (11, 0) else [],
        subject="tensorflow",
    )


@rule(
    "knowledge-partial",
    "an installed framework release is outside envcheck's version tables: its verdicts rest on the "
    "wheel's own facts (or, for a pasted report, on partial knowledge)",
    INFO,
)
def knowledge_partial(s: Snapshot) -> Iterator[Finding]:
    for fw in F.frameworks(s):
        where = coverage.outside(fw.name, fw.version)
        if where is None:
            continue
        refreshed = coverage.refreshed(fw.name)
        span = coverage.span(fw.name)
        known = {
            "CUDA": fw.cuda_build or (fw.deep.cuda_build if fw.deep else None),
            "cuDNN": fw.cudnn_build,
            "arch list": " ".join(fw.arch_list) if fw.arch_list else None,
        }
        have = [f"{k} {v}" for k, v in known.items() if v]
        from_wheel = s.source == "probe" and bool(fw.location)
        lacking = [k for k, v in known.items() if not v and k != "cuDNN"]
        basis = ("the installed wheel's own files: " if from_wheel else "what the report states: ") + (
            ", ".join(have) if have else "nothing beyond its version"
        )
        fix = (
            f"Verdicts about {fw.name} {fw.version} use {basis}."
            + (f" Not known, so not checked: {', '.join(lacking)}." if lacking else "")
            + " Refresh the tables (scripts/refresh_knowledge.py) or upgrade envcheck for full checks."
        )
        yield Finding(
            id="knowledge-partial",
            severity=INFO,
            summary=f"{fw.name} {fw.version} is {where} than envcheck's tables ({span}"
            + (f", refreshed {refreshed}" if refreshed else "")
            + "): verdicts rest on partial knowledge",
            facts={
                "framework": fw.name,
                "version": fw.version,
                "tables_cover": span,
                "tables_refreshed": refreshed,
                "facts_from": "installed wheel" if from_wheel else "report",
                **{k.replace(" ", "_").lower(): v for k, v in known.items()},
            },
            fix=fix,
            subject=fw.name,
        )
