"""The machine and the interpreter: OS, kernel, glibc, Python environment, container/WSL, env vars.

Files are read under ``ctx.root`` (so recorded trees stand in for other machines) and variables
from ``ctx.env``; facts of the running process itself (glibc, this interpreter) come from it.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from envcheck import _proc
from envcheck.models import ContainerInfo, PythonEnv, SystemInfo
from envcheck.probes.memory import mounts, read_text

if TYPE_CHECKING:
    from envcheck.probes import ProbeContext

#: Variables that DCGM's deployment check flags: they slow CUDA down or inject debuggers/profilers
#: into every process. Source: NVIDIA/DCGM nvvs/src/Software.cpp (checkForBadEnvVaribles), read
#: 2026-07-06; CUDA_LAUNCH_BLOCKING added (serialises every kernel launch).
DCGM_BAD_ENV = (
    "NSIGHT_CUDA_DEBUGGER", "CUDA_INJECTION32_PATH", "CUDA_INJECTION64_PATH", "CUDA_AUTO_BOOST",
    "CUDA_ENABLE_COREDUMP_ON_EXCEPTION", "CUDA_COREDUMP_FILE", "CUDA_DEVICE_WAITS_ON_EXCEPTION",
    "CUDA_PROFILE", "COMPUTE_PROFILE", "OPENCL_PROFILE", "CUDA_LAUNCH_BLOCKING",
)  # fmt: skip

#: Exact names of the variables that change what a deep-learning stack loads, sees or does.
RELEVANT_ENV = (
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
    "NVIDIA_REQUIRE_CUDA", "LD_LIBRARY_PATH", "LD_PRELOAD", "CUDA_HOME", "CUDA_PATH", "CUDA_ROOT",
    "CUDNN_PATH", "CUDA_MODULE_LOADING", "CUDA_CACHE_PATH", "PYTORCH_CUDA_ALLOC_CONF",
    "PYTORCH_NVML_BASED_CUDA_CHECK", "TORCH_CUDA_ARCH_LIST", "XLA_FLAGS", "JAX_PLATFORMS",
    "LIBTPU_INIT_ARGS", "ALLOW_MULTIPLE_LIBTPU_LOAD", "PJRT_DEVICE", "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONPATH", "PYTHONNOUSERSITE",
    "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "KUBERNETES_SERVICE_HOST", *DCGM_BAD_ENV,
)  # fmt: skip
#: Prefixes of whole families: TensorFlow (TF_*), JAX, XLA client, TPU, NCCL, PyTorch.
RELEVANT_PREFIXES = ("TF_", "JAX_", "XLA_", "TPU_", "NCCL_", "PYTORCH_", "TORCH_")
#: Never copied into a report: Terraform's TF_* and anything that looks like a secret.
_EXCLUDED_PREFIXES = ("TF_VAR_", "TF_TOKEN_", "TF_CLI_", "TF_CLOUD_", "TF_WORKSPACE", "TF_STATE_")
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSW", "CREDENTIAL", "API_KEY", "ACCESS_KEY", "PRIVATE_KEY")


def relevant_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` worth showing, sorted by name; secrets never included."""
    picked = {}
    for name, value in env.items():
        if name.startswith(_EXCLUDED_PREFIXES) or any(w in name.upper() for w in _SECRET_WORDS):
            continue
        if name in RELEVANT_ENV or name.startswith(RELEVANT_PREFIXES):
            picked[name] = value
    return dict(sorted(picked.items()))


def _read(ctx: ProbeContext, path: str) -> str | None:
    try:
        return read_text(ctx.path(path))
    except OSError:
        return None


# --------------------------------------------------------------------------- OS


def _os_release(ctx: ProbeContext) -> str | None:
    """PRETTY_NAME of os-release (or NAME VERSION), the way people name their distro."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = _read(ctx, path)
        if text is None:
            continue
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.startswith("#"):
                fields[key.strip()] = value.strip().strip("\"'")
        pretty = fields.get("PRETTY_NAME")
        name = pretty or " ".join(v for v in (fields.get("NAME"), fields.get("VERSION")) if v)
        if name:
            return name
    return None


def _glibc() -> str | None:
    """glibc version of this process ("2.36"); None on musl or non-Linux."""
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
    except (AttributeError, ValueError, OSError):
        value = None
    if value and value.startswith("glibc "):
        return value.split()[1]
    lib, version = platform.libc_ver()
    return version if lib == "glibc" and version else None


def _uptime(ctx: ProbeContext) -> float | None:
    text = _read(ctx, "/proc/uptime")
    try:
        return float(text.split()[0]) if text else None
    except (ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- Python


def _pyvenv_cfg(prefix: Path) -> dict[str, str]:
    try:
        text = (prefix / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    cfg = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            cfg[key.strip().lower()] = value.strip()
    return cfg


def env_kind(prefix: Path, base_prefix: Path, env: Mapping[str, str]) -> str:
    """Kind of environment of an interpreter with these prefixes: uv, virtualenv, venv, conda or system.

    A venv is told by ``prefix != base_prefix`` and its pyvenv.cfg says who made it ("uv = 0.5.1",
    "virtualenv = 20.26"). conda is a prefix that holds conda-meta/ (or is $CONDA_PREFIX).
    """
    if prefix != base_prefix:
        cfg = _pyvenv_cfg(prefix)
        if "uv" in cfg:
            return "uv"
        if "virtualenv" in cfg:
            return "virtualenv"
        return "venv"
    if os.path.isdir(prefix / "conda-meta") or (
        env.get("CONDA_PREFIX") and Path(env["CONDA_PREFIX"]) == prefix
    ):
        return "conda"
    return "system"


def _pip_version() -> str | None:
    from envcheck.probes._dist import installed_version

    return installed_version("pip")


_CHILD = (
    "import json,sys,platform\n"
    "try:\n from importlib import metadata; pip=metadata.version('pip')\n"
    "except Exception: pip=None\n"
    "print(json.dumps({'version':platform.python_version(),'implementation':platform.python_implementation(),"
    "'executable':sys.executable,'prefix':sys.prefix,'base_prefix':getattr(sys,'base_prefix',sys.prefix),"
    "'pip':pip}))"
)


def _same_interpreter(python: str) -> bool:
    try:
        return os.path.samefile(python, sys.executable)
    except OSError:
        return python == sys.executable


def python_env(ctx: ProbeContext) -> tuple[PythonEnv, str | None]:
    """The interpreter whose frameworks are inspected: this one in-process, another through a child."""
    if _same_interpreter(ctx.python):
        return (
            PythonEnv(
                version=platform.python_version(),
                implementation=platform.python_implementation(),
                executable=sys.executable,
                prefix=sys.prefix,
                kind=env_kind(Path(sys.prefix), Path(sys.base_prefix), ctx.env),
                pip_version=_pip_version(),
            ),
            None,
        )
    result = _proc.run([ctx.python, "-c", _CHILD], timeout=ctx.timeout)
    try:
        data = json.loads(result.stdout)
        prefix, base_prefix = Path(data["prefix"]), Path(data["base_prefix"])
    except (ValueError, KeyError, TypeError):
        why = result.error or f"exit {result.returncode}: {result.stderr.strip()[-200:]}"
        return PythonEnv(executable=ctx.python), f"cannot run {ctx.python}: {why}"
    return (
        PythonEnv(
            version=data.get("version"),
            implementation=data.get("implementation"),
            executable=data.get("executable"),
            prefix=data.get("prefix"),
            kind=env_kind(prefix, base_prefix, ctx.env),
            pip_version=data.get("pip"),
        ),
        None,
    )


# --------------------------------------------------------------------------- containers, WSL

#: words in /proc/1/cgroup or /proc/self/cgroup -> runtime, most specific first
_CGROUP_RUNTIMES = (
    ("libpod", "podman"), ("crio", "cri-o"), ("cri-containerd", "containerd"), ("containerd", "containerd"),
    ("docker", "docker"), ("lxc", "lxc"), ("kubepods", "kubernetes"),
)  # fmt: skip


def _environ_container(ctx: ProbeContext) -> str | None:
    """container=... in PID 1's environment (podman, systemd-nspawn, lxc set it); root-only to read."""
    text = _read(ctx, "/proc/1/environ")
    for entry in (text or "").split("\0"):
        if entry.startswith("container="):
            return entry.split("=", 1)[1].strip() or None
    return None


def container(ctx: ProbeContext) -> ContainerInfo:
    """Container runtime, Kubernetes and WSL from every marker we know; the markers found are listed.

    cgroup v2 hides the runtime from /proc/1/cgroup ("0::/"), so the files each runtime drops
    (/.dockerenv, /run/.containerenv), PID 1's ``container=`` and an overlay root count too.
    """
    markers: list[str] = []
    runtime: str | None = None
    if os.path.exists(ctx.path("/.dockerenv")):
        markers.append("/.dockerenv")
        runtime = "docker"
    if os.path.exists(ctx.path("/run/.containerenv")):
        markers.append("/run/.containerenv")
        runtime = "podman"  # podman writes this file into every container it starts
    declared = _environ_container(ctx)
    if declared:
        markers.append(f"/proc/1/environ container={declared}")
        runtime = runtime or declared
    kube_cgroup = False
    for path in ("/proc/1/cgroup", "/proc/self/cgroup"):
        text = (_read(ctx, path) or "").lower()
        hit = next(((word, name) for word, name in _CGROUP_RUNTIMES if word in text), None)
        if hit:
            markers.append(f"{path} mentions {hit[0]}")
            kube_cgroup = kube_cgroup or "kubepods" in text
            if hit[1] != "kubernetes":
                runtime = runtime or hit[1]
            break
    root_mount = next((m for m in reversed(mounts(ctx)) if m.mountpoint == "/"), None)
    if root_mount is not None and root_mount.fstype in ("overlay", "fuse-overlayfs", "aufs"):
        markers.append(f"root filesystem is {root_mount.fstype}")
        runtime = runtime or "unknown"
    kube_env = "KUBERNETES_SERVICE_HOST" in ctx.env
    kube_sa = os.path.exists(ctx.path("/var/run/secrets/kubernetes.io"))
    if kube_env:
        markers.append("KUBERNETES_SERVICE_HOST set")
    if kube_sa:
        markers.append("/var/run/secrets/kubernetes.io")
    kubernetes = kube_env or kube_sa or kube_cgroup
    if kubernetes and runtime is None:
        runtime = "unknown"
    osrelease = (_read(ctx, "/proc/sys/kernel/osrelease") or "").strip()
    wsl = "microsoft" in osrelease.lower() or "wsl" in osrelease.lower()
    if wsl:
        markers.append(f"kernel {osrelease}")
    return ContainerInfo(runtime=runtime, kubernetes=kubernetes, wsl=wsl, markers=markers)


# --------------------------------------------------------------------------- probe


def probe(ctx: ProbeContext) -> SystemInfo:
    """Collect the system section; each unreadable source leaves only its own field None."""
    kernel = _read(ctx, "/proc/sys/kernel/osrelease")
    hostname = _read(ctx, "/proc/sys/kernel/hostname")
    arch = _read(ctx, "/proc/sys/kernel/arch")
    live = ctx.root == Path("/")
    python, note = python_env(ctx)
    return SystemInfo(
        os=platform.system() or None,
        distro=_os_release(ctx),
        kernel=kernel.strip() if kernel else (platform.release() or None if live else None),
        arch=arch.strip() if arch else (platform.machine() or None if live else None),
        glibc=_glibc(),
        hostname=hostname.strip() if hostname else (socket.gethostname() if live else None),
        python=python,
        container=container(ctx),
        env=relevant_env(ctx.env),
        uptime_s=_uptime(ctx),
        error=note,
    )
